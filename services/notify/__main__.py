from services.notify.app import wire
from shared.runtime import main

main("notify", wire)
