"""Provider adapters: each turns one provider's payloads into canonical statuses."""
