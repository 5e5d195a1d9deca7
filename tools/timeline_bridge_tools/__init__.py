"""The bridge's tooling: the `bridge` CLI, the local runtime, the provider sandboxes, request
signing and mapping cases. Never in the Lambda layer: Lambda runs only `timeline_bridge`."""
