from services.payment.app import wire
from shared.runtime import main

main("payment", wire)
