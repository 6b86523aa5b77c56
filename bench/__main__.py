"""`make bench`: run every benchmark with its defaults."""

from bench import booking_flash

booking_flash.main([])
