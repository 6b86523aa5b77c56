"""RabbitMQ messaging over aio-pika: RPC, domain events, consumers, outbox relay."""
