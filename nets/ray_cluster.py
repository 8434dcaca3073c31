"""Joining a Ray cluster: the address checks that fail in seconds, with one line, where ``ray.init``
would retry for minutes, and the hint for a cluster that wants a token.

``--address`` (or ``RAY_ADDRESS``) may be ``HOST:PORT``, ``auto``, ``local`` or a ``ray://`` client
address; :func:`check_address` checks the first two before any data is loaded, :func:`auth_hint`
completes a failed join's message, :func:`import_ray` names the extra to install. Ray is optional
(``pip install -e ".[distributed]"``) and imported only here and by the executor that uses it
(:mod:`nets.distributed`).
"""

from __future__ import annotations

import os
import socket

__all__ = ["ClusterError", "auth_hint", "check_address", "host_port", "import_ray", "recorded_cluster"]


class ClusterError(RuntimeError):
    """The Ray cluster could not be started or joined; the message is one line naming why."""


def host_port(address: str | None) -> str | None:
    """``address`` (or ``RAY_ADDRESS``) where it names a cluster by ``HOST:PORT``; ``None`` for no
    address, ``auto``, ``local`` and ``ray://`` client addresses, which are left to Ray."""
    address = address if address is not None else os.environ.get("RAY_ADDRESS")
    return None if not address or address in ("auto", "local") or "://" in address else address


def recorded_cluster() -> str | None:
    """The ``HOST:PORT`` of the cluster ``ray start`` last started on this machine, as Ray records it
    (``<ray temp dir>/ray_current_cluster``; ``ray stop`` clears it): the one ``ray.init`` joins given
    no address or ``auto``. ``None`` where there is none, or where Ray's reader is not there."""
    try:
        from ray._private.utils import read_ray_address  # Ray is optional: imported only for its executor
        return read_ray_address() or None
    except Exception:  # noqa: BLE001 - another Ray version: leave the address to Ray
        return None


def _answers(host_port: str) -> str | None:
    """Why nothing answers at ``host_port`` (a TCP connect, 5 s at most); ``None`` when something does."""
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def check_address(address: str | None) -> None:
    """Fail in seconds, with a :class:`ClusterError`, where ``address`` (or ``RAY_ADDRESS``) is a
    ``HOST:PORT`` at which nothing answers, or where no address (or ``auto``) would join the cluster
    Ray records as started here (:func:`recorded_cluster`) and nothing answers there (a cluster
    killed without ``ray stop``): given either, ``ray.init`` retries for many minutes. ``local`` and
    ``ray://`` client addresses are left to Ray."""
    given = address if address is not None else os.environ.get("RAY_ADDRESS")
    if not given or given == "auto":
        recorded = recorded_cluster()
        why = _answers(recorded) if recorded and recorded.rpartition(":")[2].isdigit() else None
        if why is not None:
            raise ClusterError(f"Ray records a cluster started on this machine at {recorded}, which it joins given "
                               f"no --address or auto, but nothing answers there ({why}): start it again (ray start "
                               f"--head), clear Ray's record with `ray stop`, or give --address local")
        return
    address = host_port(address)
    if address is None:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r} is not HOST:PORT, auto or local")
    why = _answers(address)
    if why is not None:
        raise ClusterError(f"nothing answers at the Ray address {address} ({why}): "
                           "start the cluster there (ray start --head) or give its address")


def auth_hint(address: str | None) -> str:
    """What to add to a failed join of a ``HOST:PORT`` address when this process does not use Ray's
    token authentication (``RAY_AUTH_MODE`` is not ``token``): ``ray start`` turns it on by default
    since Ray 2.59, and a driver joining by address must then present the cluster's token; "" else."""
    if host_port(address) is None or os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return ("; if that cluster uses token authentication (ray start turns it on since Ray 2.59), "
            "set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, or ~/.ray/auth_token): docs/scaling.md")


def import_ray():
    """The ``ray`` module; a :class:`ClusterError` saying how to install it where it is missing."""
    try:
        import ray
    except ImportError as e:
        raise ClusterError("the ray executor needs Ray: pip install -e \".[distributed]\"") from e
    return ray
