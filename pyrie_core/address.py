"""A listening or connecting address, ``HOST:PORT``, as pyrie's options and environment variables spell it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Address", "InvalidAddress"]


class InvalidAddress(ValueError):
    """Text that is not ``HOST:PORT``; the message says why, naming what it was given for."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> Address:
        """``HOST:PORT`` (``[v6]:PORT`` for IPv6; an empty host means every interface)."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise InvalidAddress(f"{what}: {text!r} is not HOST:PORT (for example 127.0.0.1:9001)")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise InvalidAddress(f"{what}: {text!r} is not HOST:PORT (write IPv6 hosts in brackets: [::1]:9001)")
        if host and not _is_hostname_or_ip(host):
            raise InvalidAddress(f"{what}: {host!r} in {text!r} is not a host name or IP address")
        return cls(host or "0.0.0.0", int(port_text))

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _is_hostname_or_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)
    return True
