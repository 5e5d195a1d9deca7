"""The local runtime behind `bridge dev`: AWS APIs on loopback, a Function URL emulator, SQS event
source mappings, the provider sandboxes and the console."""
