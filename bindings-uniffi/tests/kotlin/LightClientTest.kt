// The uniffi Kotlin bindings of the light client, compiled and run on the
// JVM against a devnet this program starts (4 validators on loopback, free
// ports). Run by `scripts/kotlin-test` (which `make test` calls); it exits
// non-zero when a test fails.
//
// No test framework is available offline, so this is a small runner: each
// test is a named suspend function; the runner prints `ok <name> (ms)` or
// the failure, and exits 1 if any failed.

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.tiernet_ffi.ClientEvent
import uniffi.tiernet_ffi.EventListener
import uniffi.tiernet_ffi.FfiException
import uniffi.tiernet_ffi.Head
import uniffi.tiernet_ffi.LightClient
import uniffi.tiernet_ffi.LogListener
import uniffi.tiernet_ffi.identityStateKey
import uniffi.tiernet_ffi.setLogListener
import java.io.File
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

/** A running devnet: its network id, TCP bootstrap addresses, genesis and validators' ZSI ids. */
class Devnet(val dir: File, val process: Process) {
    val networkId: String
    val tcpAddrs: List<String>
    val genesis: String
    val zsiIds: List<String>

    init {
        val info = File(dir, "devnet.json")
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60)
        while (!info.exists()) {
            check(process.isAlive) { "the devnet exited with ${process.exitValue()}" }
            check(System.nanoTime() < deadline) { "the devnet did not start within 60 s" }
            Thread.sleep(100)
        }
        Thread.sleep(200)
        val json = info.readText()
        networkId = Regex("\"network_id\": \"([^\"]+)\"").find(json)!!.groupValues[1]
        // Plain TCP addresses (no /ws, no /webrtc-direct) of every node.
        tcpAddrs = Regex("\"(/ip4/[0-9.]+/tcp/[0-9]+/p2p/[A-Za-z0-9]+)\"").findAll(json).map { it.groupValues[1] }.distinct().toList()
        // The nodes' section (the genesis inside is an escaped string: no match there).
        zsiIds = Regex("\"zsi_id\": \"([0-9a-f]{64})\"").findAll(json).map { it.groupValues[1] }.toList()
        genesis = File(dir, "genesis.json").readText()
        check(tcpAddrs.size == 4 && zsiIds.size == 4) { "unexpected devnet.json: $json" }
    }

    fun stop() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor()
        }
        dir.deleteRecursively()
    }

    companion object {
        fun start(node: String): Devnet {
            val dir = Files.createTempDirectory("tiernet-kotlin-devnet").toFile()
            val process = ProcessBuilder(node, "devnet", "--validators", "4", "--base-port", "0", "--dir", dir.path)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start()
            return try {
                Devnet(dir, process)
            } catch (e: Throwable) {
                process.destroyForcibly()
                dir.deleteRecursively()
                throw e
            }
        }
    }
}

/** Collects events delivered to the callback (from a Rust thread). */
class Collector : EventListener {
    val events = CopyOnWriteArrayList<ClientEvent>()
    override fun onEvent(event: ClientEvent) {
        events.add(event)
    }
    fun heads(): List<Head> = events.filterIsInstance<ClientEvent.HeadVerified>().map { it.head }
}

/** Collects log lines delivered to the callback. */
class Lines : LogListener {
    val lines = CopyOnWriteArrayList<Triple<String, String, String>>()
    override fun onLog(level: String, target: String, message: String) {
        lines.add(Triple(level, target, message))
    }
}

fun fail(message: String): Nothing = throw AssertionError(message)

fun hex(bytes: ByteArray) = bytes.joinToString("") { "%02x".format(it) }

inline fun <reified E : Throwable> assertThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        fail("$what: expected ${E::class.simpleName}, got $e")
    }
    fail("$what: expected ${E::class.simpleName}, nothing was thrown")
}

suspend inline fun <reified E : Throwable> assertThrowsSuspend(what: String, block: suspend () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        fail("$what: expected ${E::class.simpleName}, got $e")
    }
    fail("$what: expected ${E::class.simpleName}, nothing was thrown")
}

suspend fun waitUntil(what: String, seconds: Long, done: () -> Boolean) {
    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
    while (!done()) {
        if (System.nanoTime() > deadline) fail("$what: not reached within $seconds s")
        delay(50)
    }
}

class Tests(private val net: Devnet) {
    private fun client() = LightClient(net.networkId, net.tcpAddrs, net.genesis)

    /** start() verifies a chain proof to a head; head() returns it. */
    suspend fun head() {
        client().use { client ->
            val head = client.start()
            if (head.height < 1u) fail("start returned height ${head.height}")
            if (head.hash.length != 64 || head.stateRoot.length != 64) fail("not hex hashes: $head")
            if (client.head().height < head.height) fail("head() went back: ${client.head()} < $head")
            val peers = client.peers()
            if (peers.none { it.state == "connected" && it.transports == listOf("tcp") }) fail("no connected TCP peer: $peers")
            val status = client.status()
            if (status.status !in setOf("syncing", "current")) fail("a fresh head is ${status.status}")
            client.stop()
        }
    }

    /** HeadVerified events reach the callback; waitForHeight returns a later head. */
    suspend fun events() {
        client().use { client ->
            val head = client.start()
            val listener = Collector()
            client.setListener(listener)
            val later = withTimeout(60_000) { client.waitForHeight(head.height + 2u) }
            if (later.height < head.height + 2u) fail("waitForHeight returned $later")
            waitUntil("a HeadVerified event", 10) { listener.heads().isNotEmpty() }
            val heads = listener.heads()
            if (heads.any { it.height <= head.height }) fail("an event for an old head: $heads")
            if (heads.zipWithNext().any { (a, b) -> b.height <= a.height }) fail("heads not increasing: $heads")
            client.stop()
        }
    }

    /** A validator's identity record is proven against the head; an unwritten key is proven absent. */
    suspend fun stateProof() {
        client().use { client ->
            client.start()
            val zsi = net.zsiIds[0]
            val proven = client.getState(identityStateKey(zsi))
            val record = proven.value ?: fail("no identity record for $zsi")
            if (!hex(record).contains(zsi)) fail("the record does not hold its ZSI id: ${hex(record)}")
            if (proven.head.height < 1u || proven.head.stateRoot.length != 64) fail("proven at ${proven.head}")
            val absent = client.getState("id/".toByteArray() + ByteArray(32)).value
            if (absent != null) fail("an unwritten key has a value: ${hex(absent)}")
            val identity = client.lookupIdentity(zsi) ?: fail("no identity for $zsi")
            if (identity.zsiId != zsi || identity.tier !in setOf("TL1", "TL2", "TL3", "TL4", "TL5")) fail("identity $identity")
            if (client.lookupIdentity("00".repeat(32)) != null) fail("an unregistered id has a record")
            if (client.pendingCalls() != 0uL) fail("calls left pending: ${client.pendingCalls()}")
            client.stop()
        }
    }

    /** Cancelling a coroutine drops the Rust future; the client still answers. */
    suspend fun cancellation() = kotlinx.coroutines.coroutineScope {
        client().use { client ->
            client.start()
            val job = launch { client.waitForHeight(ULong.MAX_VALUE / 2u) }
            waitUntil("the call is pending", 5) { client.pendingCalls() == 1uL }
            job.cancel()
            job.join()
            if (!job.isCancelled) fail("the job was not cancelled")
            waitUntil("the Rust future is dropped", 5) { client.pendingCalls() == 0uL }
            if (client.getState("id/".toByteArray() + ByteArray(32)).value != null) fail("absent key has a value")
            client.stop()
        }
    }

    /** The trusted state survives a restart: exported as a checkpoint, and saved to a file after each verified head. */
    suspend fun persistedRestart() = kotlinx.coroutines.coroutineScope {
        val dir = Files.createTempDirectory("tiernet-kotlin-trust").toFile()
        try {
            val file = File(dir, "trust.bin")
            val saved = client().use { client ->
                client.setTrustFile(file.path)
                val head = client.start()
                if (client.resumedFrom() != null) fail("a first start resumed from nothing")
                client.waitForHeight(head.height + 1u)
                waitUntil("the trust file is written", 10) { file.exists() }
                val checkpoint = client.exportCheckpoint()
                client.stop()
                Pair(client.head(), checkpoint)
            }
            // From the exported checkpoint: the head starts there, not at genesis.
            LightClient.fromCheckpoint(net.networkId, net.tcpAddrs, saved.second).use { client ->
                if (client.head().height != saved.first.height) fail("checkpoint at ${client.head()}, expected ${saved.first}")
                val head = client.start()
                if (head.height < saved.first.height) fail("went back: $head")
                client.stop()
            }
            // From the trust file, with no reachable peer: the saved head is
            // there before anything is asked.
            val nowhere = net.tcpAddrs[0].replace(Regex("/tcp/[0-9]+/"), "/tcp/1/")
            LightClient(net.networkId, listOf(nowhere), net.genesis).use { client ->
                client.setTrustFile(file.path)
                if (client.head().height != 0uL) fail("a new client is not at genesis")
                val starting = launch { runCatching { client.start() } }
                waitUntil("the saved head is loaded", 5) { client.head().height >= saved.first.height }
                if (client.resumedFrom() == null) fail("resumedFrom is null after a start from the trust file")
                starting.cancel()
                starting.join()
                client.stop()
            }
        } finally {
            dir.deleteRecursively()
        }
    }

    /** The client's log lines reach a callback at the level asked for. */
    suspend fun logs() {
        val lines = Lines()
        assertThrows<FfiException.BadInput>("an unknown level") { setLogListener(lines, "loud") }
        setLogListener(lines, "debug")
        try {
            client().use { client ->
                client.start()
                waitUntil("a tiernet_light log line", 10) { lines.lines.any { it.second.startsWith("tiernet_light") } }
                client.stop()
            }
        } finally {
            setLogListener(lines, "off")
        }
        if (lines.lines.any { it.first == "trace" }) fail("a trace line at level debug")
    }

    /** Each kind of failure is its own exception class. */
    suspend fun errors() {
        val bad = assertThrows<FfiException.BadAddress>("a bad address") {
            LightClient(net.networkId, listOf("not a multiaddr"), net.genesis)
        }
        if (!bad.reason.contains("not a multiaddr")) fail("reason does not name the address: ${bad.reason}")
        if (bad.message?.contains("not a multiaddr") != true) fail("message lacks the reason: ${bad.message}")
        assertThrows<FfiException.BadCheckpoint>("a genesis that is not one") {
            LightClient(net.networkId, net.tcpAddrs, "{}")
        }
        val other = assertThrows<FfiException.BadCheckpoint>("another network") {
            LightClient("othernet", net.tcpAddrs, net.genesis)
        }
        if (!other.reason.contains("othernet")) fail("reason does not name the network: ${other.reason}")
        assertThrows<FfiException.BadInput>("a ZSI id that is not hex") { identityStateKey("zz") }
        assertThrows<FfiException.BadCheckpoint>("a checkpoint that is not one") {
            LightClient.fromCheckpoint(net.networkId, net.tcpAddrs, byteArrayOf(1, 2, 3))
        }
        client().use { client ->
            assertThrowsSuspend<FfiException.NotStarted>("getState before start") {
                client.getState("params".toByteArray())
            }
            val head = client.start()
            client.stop()
            if (client.head().height < head.height) fail("the head is lost after stop")
            assertThrowsSuspend<FfiException.NotStarted>("getState after stop") {
                client.getState("params".toByteArray())
            }
        }
    }
}

fun main(args: Array<String>) {
    val node = System.getenv("TIERNET_NODE") ?: "target/debug/tiernet-node"
    val only = args.toSet()
    val net = Devnet.start(node)
    val tests = Tests(net)
    val all: List<Pair<String, suspend () -> Unit>> = listOf(
        "head" to tests::head,
        "events" to tests::events,
        "state_proof" to tests::stateProof,
        "cancellation" to tests::cancellation,
        "errors" to tests::errors,
        "persisted_restart" to tests::persistedRestart,
        "logs" to tests::logs,
    )
    var failed = 0
    try {
        for ((name, test) in all) {
            if (only.isNotEmpty() && name !in only) continue
            val t0 = System.nanoTime()
            try {
                runBlocking { withTimeout(120_000) { test() } }
                println("ok     $name (${(System.nanoTime() - t0) / 1_000_000} ms)")
            } catch (e: Throwable) {
                if (e is CancellationException && e !is kotlinx.coroutines.TimeoutCancellationException) throw e
                failed++
                println("FAILED $name (${(System.nanoTime() - t0) / 1_000_000} ms): $e")
                e.printStackTrace()
            }
        }
    } finally {
        net.stop()
    }
    println(if (failed == 0) "kotlin: all tests passed" else "kotlin: $failed test(s) failed")
    exitProcess(if (failed == 0) 0 else 1)
}
