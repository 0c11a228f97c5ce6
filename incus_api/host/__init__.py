"""The host itself, read from ``/proc`` and its files: listening sockets (``sockets``), the
bridge's dnsmasq leases (``leases``), the default route (``route``) and kernel modules
(``kernel_modules``). No Flask, no other adapter."""
