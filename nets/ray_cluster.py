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
import time

__all__ = ["ClusterError", "auth_hint", "check_address", "host_port", "import_ray", "missing_resources",
           "ray_import_error", "recorded_cluster", "speaks_grpc", "split_host_port", "starts_own_cluster"]


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


def starts_own_cluster(address: str | None) -> bool:
    """Whether ``ray.init(address=address)`` starts a cluster of this process's own, which ends with it
    and cannot grow (``local``; or no address, no ``RAY_ADDRESS`` and no :func:`recorded_cluster`), rather
    than joining one, which may (an autoscaling cluster adds the nodes its tasks ask for)."""
    if address == "local":
        return True
    return address is None and not os.environ.get("RAY_ADDRESS") and recorded_cluster() is None


#: An HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113, sections 3.4 and
#: 6.5): a gRPC server, as a Ray cluster's GCS is, answers with a SETTINGS frame of its own.
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4  # the frame type, byte 3 of a frame's 9-byte header


def split_host_port(address: str) -> tuple[str, str]:
    """``(host, port)`` of ``HOST:PORT``, an IPv6 host's brackets taken off (``[::1]:6379``, as Ray
    writes one); the port as given (it may not be a number), "" without a colon."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, ""
    return (host[1:-1] if host.startswith("[") and host.endswith("]") else host), port


def _knock(host_port: str, timeout: float = 5.0) -> tuple[str | None, bytes]:
    """Connect to ``host_port`` and send an HTTP/2 connection preface, ``timeout`` seconds in all:
    ``(why nothing answers, None where the connection opened; the first 9 bytes of the reply, fewer
    where it sent less in time)``."""
    host, port = split_host_port(host_port)
    deadline = time.monotonic() + timeout
    head = b""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            try:
                s.sendall(_HTTP2_HELLO)
                while len(head) < 9 and (left := deadline - time.monotonic()) > 0:
                    s.settimeout(left)
                    chunk = s.recv(9 - len(head))
                    if not chunk:
                        break
                    head += chunk
            except OSError:  # it took the connection; what it sent before failing is the reply
                pass
    except OSError as e:
        return e.strerror or type(e).__name__, b""
    return None, head


def _is_settings(head: bytes) -> bool:
    return len(head) == 9 and head[3] == _SETTINGS


def speaks_grpc(host_port: str, timeout: float = 5.0) -> bool:
    """Whether the server at ``host_port`` answers an HTTP/2 connection preface with a SETTINGS
    frame, as a gRPC server does (Ray's GCS; not its dashboard, nor most other services), within
    ``timeout`` seconds in all. Plaintext only: with ``RAY_USE_TLS`` set the caller does not ask.
    Any gRPC port of a cluster passes (its raylet's too); it tells Ray's GCS from a web server."""
    why, head = _knock(host_port, timeout)
    return why is None and _is_settings(head)


def check_address(address: str | None) -> None:
    """Fail in seconds, with a :class:`ClusterError`, where ``address`` (or ``RAY_ADDRESS``) is a
    ``HOST:PORT`` at which nothing answers, or where no address (or ``auto``) would join the cluster
    Ray records as started here (:func:`recorded_cluster`) and nothing answers there (a cluster
    killed without ``ray stop``): given either, ``ray.init`` retries for many minutes. ``local`` and
    ``ray://`` client addresses are left to Ray."""
    given = address if address is not None else os.environ.get("RAY_ADDRESS")
    source = "" if address is not None else " (from RAY_ADDRESS)"
    if not given or given == "auto":
        recorded = recorded_cluster()
        why = _knock(recorded)[0] if recorded and split_host_port(recorded)[1].isdigit() else None
        if why is not None:
            raise ClusterError(f"Ray records a cluster started on this machine at {recorded}, which it joins given "
                               f"no --address or auto, but nothing answers there ({why}): start it again (ray start "
                               f"--head), clear Ray's record with `ray stop`, or give --address local")
        return
    address = host_port(address)
    if address is None:
        return
    host, port = split_host_port(address)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"Ray address {address!r}{source} is not HOST:PORT (a port 1 to 65535), auto, local "
                           "or ray://HOST:PORT")
    why, head = _knock(address)  # one connection: does anything answer, and is it gRPC
    if why is not None:
        raise ClusterError(f"nothing answers at the Ray address {address}{source} ({why}): "
                           "start the cluster there (ray start --head) or give its address")
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", "") and not _is_settings(head):
        raise ClusterError(f"something answers at {address}{source}, but not a Ray cluster's GCS (no gRPC reply): "
                           "give the port `ray start --head` printed (6379 unless --port), not the dashboard's "
                           "(8265); for a cluster with TLS, set RAY_USE_TLS=1 as its nodes do")


def auth_hint(address: str | None) -> str:
    """What to add to a failed join of a ``HOST:PORT`` address: without Ray's token authentication
    (``RAY_AUTH_MODE`` is not ``token``), that ``ray start`` turns it on by default since Ray 2.59 and
    a driver joining by address must then present the cluster's token; with it, to check that the
    token is the cluster's; "" for other addresses."""
    if host_port(address) is None:
        return ""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ("; check that the token (RAY_AUTH_TOKEN, or ~/.ray/auth_token) is the cluster's: "
                "`ray get-auth-token` on its head prints it")
    return ("; if that cluster uses token authentication (ray start turns it on since Ray 2.59), "
            "set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, or ~/.ray/auth_token): docs/scaling.md")


def missing_resources(ray, cpus: int, gpus: float) -> str | None:
    """Where no live node of the cluster ``ray`` has joined holds ``cpus`` CPUs and ``gpus`` GPUs at once,
    the one task's worth that each training task asks for (Ray schedules a task on one node, and waits
    while none fits: for ever on a cluster that cannot grow), a line saying so and naming the nodes'
    resources; ``None`` where one has them."""
    nodes = [n.get("Resources") or {} for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
        return None
    need = f"{cpus} CPU(s)" + (f" and {gpus:g} GPU(s)" if gpus else "")
    have = ", ".join(f"{r.get('CPU', 0):g} CPU / {r.get('GPU', 0):g} GPU" for r in nodes[:4]) or "none alive"
    more = " ..." if len(nodes) > 4 else ""
    return (f"no node of the Ray cluster has the {need} one training task asks for (its nodes: {have}{more}): "
            f"give fewer --task-threads (each task's CPUs; by default --threads), or start nodes with more "
            f"(ray start --num-cpus N --num-gpus N)")


def ray_import_error() -> str | None:
    """Why ``import ray`` fails, in words that follow "the ray executor" (a missing Ray names the
    extra to install; an installed one that does not import keeps its own error, where reinstalling
    the extra may not help); ``None`` when it imports."""
    try:
        import ray  # noqa: F401 - Ray is optional: imported only for its executor
    except ImportError as e:
        if isinstance(e, ModuleNotFoundError) and e.name == "ray":
            return 'needs Ray: pip install -e ".[distributed]"'
        return f"needs Ray, which is installed but does not import ({type(e).__name__}: {e})"
    return None


def import_ray():
    """The ``ray`` module; a :class:`ClusterError` naming :func:`ray_import_error`'s reason where it
    does not import."""
    why = ray_import_error()
    if why is not None:
        raise ClusterError(f"the ray executor {why}")
    import ray

    return ray
