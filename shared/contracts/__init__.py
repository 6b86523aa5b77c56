"""Pydantic models: the only definition of every RPC message and HTTP body."""
