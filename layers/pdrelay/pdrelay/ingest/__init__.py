"""HTTP endpoints to the alert queue: authentication, replay protection, body decoding, scrubbing, fan-out, enqueue."""
