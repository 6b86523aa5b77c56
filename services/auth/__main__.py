"""`python -m services.auth`"""

from services.auth.app import wire
from shared.runtime import main

main("auth", wire)
