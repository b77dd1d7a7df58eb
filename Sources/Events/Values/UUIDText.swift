import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's random bytes (`/dev/urandom`), 4 KiB per read, for identifiers (never for secrets: tokens and keys ask the
/// system generator themselves). `SystemRandomNumberGenerator` makes one system call per 8 bytes: two per UUID,
/// ~2% of coordd's CPU under command load (`perf`, 2026-12-06).
private let identifierBytes = Mutex(RandomBytes())

private struct RandomBytes {
    var buffer = [UInt8](repeating: 0, count: 4096)
    var used = 4096

    mutating func take16() -> (UInt64, UInt64) {
        if used + 16 > buffer.count { refill() }
        defer { used += 16 }
        return buffer.withUnsafeBytes { raw in
            (raw.loadUnaligned(fromByteOffset: used, as: UInt64.self), raw.loadUnaligned(fromByteOffset: used + 8, as: UInt64.self))
        }
    }

    /// Kept open for the process: one `read` per refill.
    private static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    private mutating func refill() {
        buffer.withUnsafeMutableBytes { raw in
            var filled = 0
            while filled < raw.count {
                if Self.urandom >= 0 {
                    let n = read(Self.urandom, raw.baseAddress! + filled, raw.count - filled)
                    if n > 0 { filled += n; continue }
                    if n < 0 && errno == EINTR { continue }
                }
                // No /dev/urandom (a sandbox without it), or it failed: the system generator, 8 bytes at a time.
                var generator = SystemRandomNumberGenerator()
                while filled < raw.count {
                    withUnsafeBytes(of: generator.next() as UInt64) { word in
                        let k = min(8, raw.count - filled)
                        raw.baseAddress!.advanced(by: filled).copyMemory(from: word.baseAddress!, byteCount: k)
                        filled += k
                    }
                }
            }
        }
        used = 0
    }
}

extension UUID {
    /// A random (version 4) UUID from the kernel's generator (buffered: see `RandomBytes`). Foundation's
    /// `UUID()` on Linux opens, reads and closes `/dev/urandom` for each one, a few percent of coordd's CPU per command.
    public static func random() -> UUID {
        var halves = identifierBytes.withLock { $0.take16() }
        return withUnsafeMutableBytes(of: &halves) { raw in
            raw[6] = (raw[6] & 0x0f) | 0x40  // version 4
            raw[8] = (raw[8] & 0x3f) | 0x80  // RFC 4122 variant
            return UUID(uuid: raw.load(as: uuid_t.self))
        }
    }

    /// Parses the canonical `8-4-4-4-12` hex form (either case), as PostgreSQL prints a uuid; nil for anything else.
    /// Byte by byte: Foundation's `UUID(uuidString:)` goes through `sscanf` on Linux, which was 5% of a rebuild's
    /// client CPU (every event read carries its id).
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) -> UUID? {
        guard bytes.count == 36 else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &value) { out -> Bool in
            var i = 0
            for k in 0..<16 {
                if k == 4 || k == 6 || k == 8 || k == 10 {
                    guard bytes[i] == UInt8(ascii: "-") else { return false }
                    i += 1
                }
                guard let high = Hex.nibble(bytes[i]), let low = Hex.nibble(bytes[i + 1]) else { return false }
                out[k] = high << 4 | low
                i += 2
            }
            return true
        }
        return ok ? UUID(uuid: value) : nil
    }

    /// `parse(bytes:)` for a string.
    public static func parse(_ text: String) -> UUID? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    /// `8-4-4-4-12` lower-case hex, as PostgreSQL prints a uuid. Built byte by byte: `uuidString` goes
    /// through `sprintf` on Linux, which showed up in import profiles.
    public var lowercasedString: String {
        String(unsafeUninitializedCapacity: 36) { appendLowercased(to: $0) }
    }

    /// Writes `lowercasedString`'s 36 bytes at the start of `out`; returns 36.
    @discardableResult
    public func appendLowercased(to out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        withUnsafeBytes(of: uuid) { raw in
            var o = 0
            for (i, byte) in raw.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                out[o] = Hex.digits[Int(byte >> 4)]
                out[o + 1] = Hex.digits[Int(byte & 0x0f)]
                o += 2
            }
            return o
        }
    }
}
