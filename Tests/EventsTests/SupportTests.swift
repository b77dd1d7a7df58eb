import Foundation
import Synchronization
import Testing
@testable import Events
import TestSupport

@Suite("Support")
struct SupportTests {
    @Test("timestamps format and parse in RFC 3339 and PostgreSQL's ISO form")
    func timestamps() throws {
        let date = Date(timeIntervalSince1970: 1_762_583_400.5)
        #expect(Timestamp.format(date) == "2025-11-08T06:30:00.5Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.parse("2025-11-08T06:30:00.5Z") == date)
        #expect(Timestamp.parse("2025-11-08 13:30:00.5+07") == date)
        #expect(Timestamp.parse("2025-11-08T13:30:00.5+07:00") == date)
        #expect(Timestamp.parse("2025-11-08T06:30:00") == nil, "a time without a zone is ambiguous")
        #expect(Timestamp.parse("2025-02-30T00:00:00Z") == nil)
        #expect(Timestamp.parse("2024-02-29T00:00:00Z") != nil)
        #expect(Timestamp.parse("2025-11-08T06:30:00Zjunk") == nil)
        #expect(Timestamp.parseDate("2026-11-08") == Timestamp.parse("2026-11-08T00:00:00Z"))
        #expect(Timestamp.parseDate("2026-13-01") == nil)
    }

    @Test("the digit-by-digit formatter agrees with the C library's gmtime over years 0000 to 9999")
    func timestampFormatterMatchesGmtime() {
        var state: UInt64 = 42
        var samples: [Int] = [0, -1, 86_399, 86_400, 951_782_400, 951_868_800, -62_167_219_200, 253_402_300_799, 1_790_000_000]
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            samples.append(Int(truncatingIfNeeded: state >> 20) % 253_402_300_800 - 62_167_219_200 / 2)
        }
        for seconds in samples {
            for fraction in [0, 500_000, 1, 123_450] {
                let micros = Int64(seconds) * 1_000_000 + Int64(fraction)
                #expect(Timestamp.format(micros: micros) == Timestamp.formatWithGmtime(seconds: seconds, fraction: fraction), "\(seconds)")
            }
        }
        #expect(Timestamp.format(micros: 253_402_300_800_000_000) == "10000-01-01T00:00:00Z")
    }

    @Test("UUID.parse reads what Foundation reads in the canonical form, either case, and refuses the rest")
    func uuidParse() {
        for _ in 0..<2_000 {
            let id = UUID()
            #expect(UUID.parse(id.uuidString) == id && UUID.parse(id.uuidString.lowercased()) == id)
            #expect(UUID.parse(id.lowercasedString) == UUID(uuidString: id.lowercasedString))
        }
        let good = "0f9e8d7c-6b5a-4321-8fed-cba987654321"
        #expect(UUID.parse(good)?.lowercasedString == good)
        for bad in ["", String(good.dropLast()), good + "0", good.replacingOccurrences(of: "-", with: "_"),
                    "0f9e8d7c6b5a43218fedcba987654321", "0f9e8d7c-6b5a-4321-8fed-cba98765432g", "{0f9e8d7c-6b5a-4321-8fed-cba98765432}",
                    "0f9e8d7-c6b5a-4321-8fed-cba987654321", "0f9e8d7c-6b5a-4321-8fed-cba98765432\u{e9}"] {
            #expect(UUID.parse(bad) == nil, "\(bad)")
            #expect(UUID(uuidString: bad) == nil, "Foundation refuses \(bad) too")
        }
    }

    @Test("JSONValue.parse: repeated keys refused in small objects and past the switch to a set; ASCII and UTF-8 strings read, invalid UTF-8 refused")
    func jsonValueParse() throws {
        func object(_ keys: [String]) -> Data { Data(("{" + keys.map { "\"\($0)\":1" }.joined(separator: ",") + "}").utf8) }
        for n in [1, 2, 15, 16, 17, 40] {
            let keys = (0..<n).map { "k\($0)" }
            #expect(try JSONValue.parse(object(keys)).keys == keys)
            // The repeat as the last key: found by the scan (under 16 keys) and by the set (from 16 on).
            for earlier in Set([0, n / 2, n - 1]) {
                #expect(throws: JSONValue.Invalid.self, "key \(earlier) repeated among \(n)") { try JSONValue.parse(object(keys + [keys[earlier]])) }
            }
        }
        let text = #"{"ascii":"W00","accented":"Tacloban – Leyte, é","escaped":"a\"b\u00e9"}"#
        let parsed = try JSONValue.parse(Data(text.utf8))
        guard case .string("W00") = parsed["ascii"], case .string("Tacloban – Leyte, é") = parsed["accented"],
              case .string("a\"bé") = parsed["escaped"] else {
            Issue.record("strings read back wrongly: \(parsed.json)")
            return
        }
        for bad: [UInt8] in [[0xff], [0xc3], [0xe2, 0x80], [0xed, 0xa0, 0x80], [0x41, 0x80, 0x41]] {
            let bytes = Array(#"{"k":""#.utf8) + bad + Array(#""}"#.utf8)
            #expect(throws: JSONValue.Invalid.self, "\(bad)") { try JSONValue.parse(Data(bytes)) }
        }
    }

    @Test("random UUIDs are version 4, RFC 4122 variant, and do not repeat, also drawn from eight threads at once")
    func randomUUIDs() async {
        let ids = (0..<20_000).map { _ in UUID.random() }
        #expect(Set(ids).count == ids.count)
        // The bytes come from one buffer refilled from the kernel: threads drawing at once never share a slice.
        let drawn = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<8 { group.addTask { (0..<5_000).map { _ in UUID.random() } } }
            var all: [UUID] = []
            for await part in group { all += part }
            return all
        }
        #expect(Set(drawn + ids).count == drawn.count + ids.count)
        for id in ids.prefix(1_000) {
            let text = id.lowercasedString
            #expect(text.count == 36 && UUID(uuidString: text) == id)
            #expect(Array(text.utf8)[14] == UInt8(ascii: "4"))
            #expect("89ab".utf8.contains(Array(text.utf8)[19]))
        }
        // Every other bit varies: OR and AND over many ids leave only the fixed bits fixed.
        let bytes = ids.map { id in withUnsafeBytes(of: id.uuid) { Array($0) } }
        let or = bytes.reduce([UInt8](repeating: 0, count: 16)) { zip($0, $1).map { $0 | $1 } }
        let and = bytes.reduce([UInt8](repeating: 0xff, count: 16)) { zip($0, $1).map { $0 & $1 } }
        #expect(or == [UInt8](repeating: 0xff, count: 16).enumerated().map { $0 == 6 ? 0x4f : $0 == 8 ? 0xbf : $1 })
        #expect(and == [UInt8](repeating: 0, count: 16).enumerated().map { $0 == 6 ? 0x40 : $0 == 8 ? 0x80 : $1 })
    }

    @Test("passwords are redacted from connection strings")
    func redaction() {
        #expect(PostgresConfiguration.redact("postgres://coord:s3cret@db:5432/coord") == "postgres://coord:***@db:5432/coord")
        #expect(PostgresConfiguration.redact("host=db password=s3cret user=x") == "host=db password=*** user=x")
        #expect(PostgresConfiguration.redact("postgres://db/coord") == "postgres://db/coord")
    }

    @Test("schema names must be plain identifiers")
    func schemaNames() {
        #expect(throws: PostgresError.self) { try PostgresConfiguration(connectionString: "", schema: "x; DROP") }
        #expect(throws: PostgresError.self) { try PostgresConfiguration(connectionString: "", schema: "Upper") }
        #expect((try? PostgresConfiguration(connectionString: "", schema: "t_abc123")) != nil)
    }

    @Test("arguments: long options, inline values, flags, unknown options")
    func arguments() throws {
        let spec = CommandSpec(path: "coordctl bench append", summary: "x",
                               options: [.init("writers", value: "N", help: ""), .init("json", help: "")])
        let parsed = try spec.parse(["--writers", "32", "--json", "extra"])
        #expect(try parsed.int("writers", default: 1) == 32)
        #expect(parsed.flag("json"))
        #expect(parsed.positionals == ["extra"])
        #expect(try spec.parse(["--writers=8"]).value("writers") == "8")
        #expect(throws: UsageError.self) { try spec.parse(["--nope"]) }
        #expect(throws: UsageError.self) { try spec.parse(["--writers"]) }
        #expect(throws: UsageError.self) { try spec.parse(["--json=1"]) }
        #expect(throws: UsageError.self) { try spec.parse(["--writers", "x"]).int("writers", default: 1) }
        #expect(try spec.parse(["-h"]).wantsHelp)
        #expect(spec.help.contains("--writers N"))
    }

    @Test("log lines are single-line, keys sorted, values quoted when needed")
    func logLines() {
        let lines = LockedLines()
        let logger = Logger(label: "coordd", level: .info) { lines.add($0) }
        logger.debug("dropped")
        logger.info("appended\nsecond line", ["request.id": "r1", "http.status": "201", "note": "two words"])
        #expect(lines.all.count == 1)
        let line = lines.all[0]
        #expect(line.hasSuffix(#" info coordd: http.status=201 note="two words" request.id=r1 appended second line"#))
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

@Suite("Blocking threads")
struct BlockingThreadsTests {
    @Test("64 jobs that block until all 64 have started all run at once (Dispatch's global queue ran 4 or 5)")
    func manyBlockedAtOnce() async throws {
        let threads = BlockingThreads(maxThreads: 128, idleTimeout: 1)
        let started = Mutex(0)
        let allStarted = DispatchSemaphore(value: 0)
        let finished = DispatchGroup()
        let released = Mutex(0)
        for _ in 0..<64 {
            finished.enter()
            threads.run {
                if started.withLock({ $0 += 1; return $0 }) == 64 { allStarted.signal() }
                // Each job blocks until every job is running: with fewer threads than jobs this never ends.
                while started.withLock({ $0 }) < 64 && released.withLock({ $0 }) == 0 { usleep(1000) }
                finished.leave()
            }
        }
        let result = await runBlockingWait { allStarted.wait(timeout: .now() + 20) }
        released.withLock { $0 = 1 }
        #expect(result == .success, "only \(started.withLock { $0 }) of 64 jobs ran at once")
        _ = await runBlockingWait { finished.wait(timeout: .now() + 20) }
        #expect(threads.threadCount <= 128)
    }

    private func runBlockingWait(_ body: @escaping @Sendable () -> DispatchTimeoutResult) async -> DispatchTimeoutResult {
        await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
    }
}

@Suite("gzip")
struct GzipTests {
    /// gzip(1) decompresses, and says whether the member is sound (CRC and size).
    static func gunzip(_ data: [UInt8]) throws -> [UInt8]? {
        let file = NSTemporaryDirectory() + "coord-gzip-\(UUID().uuidString).gz"
        try Data(data).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let out = try Subprocess.run(["/bin/sh", "-c", "gzip -dc \"$0\" | od -An -v -tx1", file])
        guard out.status == 0 else { return nil }
        return out.output.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0, radix: 16) }
    }

    @Test("what Gzip.compress writes, gzip(1) reads back exactly: empty, tiny, random, repetitive, JSON, long runs")
    func roundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let json = Array(("[" + (0..<3000).map { #"{"warehouse":"MNL","item":"HSHETARPW406","on_hand":\#($0 * 7 % 1000),"status":"ok"}"# }.joined(separator: ",") + "]").utf8)
        let cases: [[UInt8]] = [[], [65], Array("abcabcabcabcabc".utf8), (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &rng) },
                                [UInt8](repeating: 0x78, count: 100_000), json, Array(json.prefix(40_000)) + Array(json.prefix(40_000))]
        for data in cases {
            let compressed = Gzip.compress(data)
            #expect(try Self.gunzip(compressed) == data, "\(data.count) bytes")
        }
        let ratio = Double(Gzip.compress(json).count) / Double(json.count)
        #expect(ratio < 0.2, "JSON compresses to \(ratio) of its size")
    }

    @Test("Accept-Encoding: gzip, x-gzip or * with q above 0")
    func accepted() {
        #expect(Gzip.accepted(by: "gzip, deflate, br"))
        #expect(Gzip.accepted(by: "br;q=1.0, gzip;q=0.8"))
        #expect(Gzip.accepted(by: "*"))
        #expect(!Gzip.accepted(by: "gzip;q=0"))
        #expect(!Gzip.accepted(by: "identity"))
        #expect(!Gzip.accepted(by: nil))
        #expect(!Gzip.accepted(by: "*;q=0, br"))
    }

    @Test("Waiters: a waiter whose condition holds returns at once; others wake at resumeAll, or when cancelled; none is lost to a change made while it parks")
    func waiters() async throws {
        final class Counter: Sendable {
            let value = Mutex(0)
            var now: Int { value.withLock { $0 } }
        }
        let w = Waiters()
        let counter = Counter()
        await w.wait { true }
        let parked = Task { await w.wait { counter.now > 0 }; return counter.now }
        try await Task.sleep(nanoseconds: 50_000_000)
        counter.value.withLock { $0 = 1 }
        w.resumeAll()
        #expect(await parked.value == 1)
        let cancelled = Task { await w.wait { false } }
        try await Task.sleep(nanoseconds: 20_000_000)
        cancelled.cancel()
        await cancelled.value
        // Changes racing with parking: the owner changes its state and resumes all right as each waiter parks.
        counter.value.withLock { $0 = 0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 1...200 {
                group.addTask { while counter.now < i { await w.wait { counter.now >= i } } }
            }
            for _ in 1...200 {
                counter.value.withLock { $0 += 1 }
                w.resumeAll()
                await Task.yield()
            }
            try await group.waitForAll()
        }
        #expect(counter.now == 200)
    }
}
