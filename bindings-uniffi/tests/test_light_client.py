"""The uniffi bindings of the light client, loaded from Python against a
devnet this test starts (4 validators on loopback, free ports).

Run by `make test` after `scripts/bindings`; by hand:
    scripts/bindings && python3 -m pytest -q bindings-uniffi/tests
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(os.environ.get("TIERNET_BINDINGS", ROOT / "target/bindings")) / "python"))
import tiernet_ffi  # noqa: E402

NODE = Path(os.environ.get("TIERNET_NODE", ROOT / "target/debug/tiernet-node"))


@pytest.fixture(scope="module")
def devnet():
    """A running devnet: (network id, TCP bootstrap addrs, genesis JSON, nodes)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [str(NODE), "devnet", "--validators", "4", "--base-port", "0", "--dir", tmp],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            info = Path(tmp) / "devnet.json"
            deadline = time.monotonic() + 60
            while not info.exists():
                assert proc.poll() is None, f"the devnet exited with {proc.returncode}"
                assert time.monotonic() < deadline, "the devnet did not start"
                time.sleep(0.1)
            time.sleep(0.2)
            data = json.loads(info.read_text())
            addrs = [a for n in data["nodes"] for a in n["addrs"] if "/tcp/" in a and "/ws" not in a]
            genesis = (Path(tmp) / "genesis.json").read_text()
            yield data["network_id"], addrs, genesis, data["nodes"]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Collector(tiernet_ffi.EventListener):
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def on_event(self, event):
        with self.lock:
            self.events.append(event)

    def heads(self):
        with self.lock:
            return [e.head for e in self.events if isinstance(e, tiernet_ffi.ClientEvent.HEAD_VERIFIED)]


def test_a_verified_head_a_proven_state_value_and_events(devnet):
    network, addrs, genesis, nodes = devnet

    async def main():
        client = tiernet_ffi.LightClient(network, addrs, genesis)
        head = await client.start()
        assert head.height >= 1
        assert len(head.hash) == 64 and len(head.state_root) == 64
        listener = Collector()
        client.set_listener(listener)
        later = await asyncio.wait_for(client.wait_for_height(head.height + 2), 60)
        assert later.height >= head.height + 2
        deadline = time.monotonic() + 10
        while not listener.heads() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        heads = listener.heads()
        assert heads, "no HeadVerified event reached the callback"
        assert all(h.height > head.height for h in heads)
        # A validator's identity record, proven against the verified head.
        key = tiernet_ffi.identity_state_key(nodes[0]["zsi_id"])
        proven = await client.get_state(key)
        assert proven.value is not None and bytes.fromhex(nodes[0]["zsi_id"]) in proven.value
        assert proven.head.height >= later.height and len(proven.head.state_root) == 64
        # The same record decoded, with its tier.
        identity = await client.lookup_identity(nodes[0]["zsi_id"])
        assert identity.zsi_id == nodes[0]["zsi_id"]
        assert identity.tier in ("TL1", "TL2", "TL3", "TL4", "TL5") and not identity.slashed
        assert await client.lookup_identity("00" * 32) is None
        with pytest.raises(tiernet_ffi.FfiError.BadInput):
            await client.lookup_identity("zz")
        # A key nobody wrote is proven absent.
        assert (await client.get_state(b"id/" + bytes(32))).value is None
        # Peers with their state and transport.
        peers = client.peers()
        assert any(p.state == "connected" and p.transports == ["tcp"] and "/tcp/" in p.address for p in peers)
        assert client.pending_calls() == 0
        # Stop it: a Rust thread calling the Python listener while the
        # interpreter shuts down is killed by CPython in the middle of the
        # call, and the process aborts ("exception not rethrown").
        client.stop()

    asyncio.run(main())


def test_a_pending_call_is_cancelled(devnet):
    network, addrs, genesis, _ = devnet

    async def main():
        client = tiernet_ffi.LightClient(network, addrs, genesis)
        await client.start()
        task = asyncio.ensure_future(client.wait_for_height(2**62))
        await asyncio.sleep(0.5)
        assert client.pending_calls() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The Rust future was dropped, not left running.
        deadline = time.monotonic() + 5
        while client.pending_calls() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.pending_calls() == 0
        # The client still answers.
        assert (await client.get_state(b"id/" + bytes(32))).value is None
        # Stopped, it keeps its head and refuses further calls.
        height = client.head().height
        client.stop()
        assert client.head().height >= height
        with pytest.raises(tiernet_ffi.FfiError.NotStarted):
            await client.get_state(b"id/" + bytes(32))

    asyncio.run(main())


def test_a_bad_address_is_a_typed_error(devnet):
    network, _, genesis, _ = devnet
    with pytest.raises(tiernet_ffi.FfiError.BadAddress) as raised:
        tiernet_ffi.LightClient(network, ["not a multiaddr"], genesis)
    assert "not a multiaddr" in str(raised.value)


def test_a_bad_checkpoint_is_a_typed_error(devnet):
    network, addrs, genesis, _ = devnet
    with pytest.raises(tiernet_ffi.FfiError.BadCheckpoint):
        tiernet_ffi.LightClient(network, addrs, "{}")
    with pytest.raises(tiernet_ffi.FfiError.BadCheckpoint) as raised:
        tiernet_ffi.LightClient("othernet", addrs, genesis)
    assert "othernet" in str(raised.value)


class Chunks(tiernet_ffi.SnapshotListener):
    def __init__(self):
        self.entries = []
        self.progress = []

    def on_chunk(self, entries, done, total):
        self.entries.extend(entries)
        self.progress.append((done, total))


class Lines(tiernet_ffi.LogListener):
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()

    def on_log(self, level, target, message):
        with self.lock:
            self.lines.append((level, target, message))


def test_a_snapshot_streams_its_verified_entries_and_logs_reach_a_callback(devnet):
    network, addrs, genesis, nodes = devnet
    lines = Lines()
    tiernet_ffi.set_log_listener(lines, "debug")
    with pytest.raises(tiernet_ffi.FfiError.BadInput):
        tiernet_ffi.set_log_listener(lines, "loud")

    async def main():
        client = tiernet_ffi.LightClient(network, addrs, genesis)
        await client.start()
        # The devnet takes a snapshot every 10 blocks.
        await asyncio.wait_for(client.wait_for_height(11), 60)
        chunks = Chunks()
        info = await client.sync_snapshot(chunks)
        assert info.height >= 10 and info.chunks >= 1
        assert len(chunks.entries) == info.entries
        assert chunks.progress[-1] == (info.chunks, info.chunks)
        assert [d for d, _ in chunks.progress] == list(range(1, info.chunks + 1))
        # Every identity of the devnet is among the verified entries.
        keys = {bytes(e.key) for e in chunks.entries}
        for node in nodes:
            assert tiernet_ffi.identity_state_key(node["zsi_id"]) in keys
        client.stop()

    asyncio.run(main())
    tiernet_ffi.set_log_listener(lines, "off")
    with lines.lock:
        got = list(lines.lines)
    assert any(t.startswith("tiernet_light") for _, t, _ in got), got[:5]
    assert all(level in ("error", "warn", "info", "debug") for level, _, _ in got)
