"""`python -m services.catalog`"""

from services.catalog.app import wire
from shared.runtime import main

main("catalog", wire)
