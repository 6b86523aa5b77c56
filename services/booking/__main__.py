from services.booking.app import wire
from shared.runtime import main

main("booking", wire)
