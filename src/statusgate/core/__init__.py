"""The provider-independent heart: resource names, the order of updates, fan-out."""
