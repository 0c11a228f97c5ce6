"""The host itself, read from ``/proc`` and its files: listening sockets (``sockets``), the
bridge's dnsmasq leases (``leases``), the default route (``route``), kernel modules
(``kernel_modules``) and what the containers' veths delivered (``links``). No Flask, no other adapter."""
