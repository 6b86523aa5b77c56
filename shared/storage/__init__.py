"""MongoDB access (pymongo's asyncio API), index bootstrap, leases, the embedded dev store."""
