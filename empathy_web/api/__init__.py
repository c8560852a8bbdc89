"""The agents' HTTP API (``/api/v1/``): what an agent does through the library, for
agents that hold a credential rather than a Redis URL."""
