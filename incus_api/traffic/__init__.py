"""Traffic accounting: the host's own counters (``nft_counters``) and the pure rules of a
traffic period and quota (``periods``). No Flask, no Incus; ``service.traffic`` composes them."""
