// The fuzz targets' checks, shared by the libFuzzer build (scripts/fuzz.sh compiles this file with the HTTP
// decoder's sources into one instrumented binary, with FUZZING defined) and by the regression tests, which run
// every kept input (Tests/Fuzz/corpus, Tests/Fuzz/crashes) through the same checks.
import Foundation
#if FUZZING
@testable import Coordination
@testable import Events
#else
@testable import Coordination
@testable import Events
@testable import coordd
#endif

/// What each target checks of one input: nothing traps (no overflow, no out-of-bounds, no force-unwrap on
/// input), and the promise a user relies on holds. A broken promise is a `fatalError`, which libFuzzer and the
/// address sanitizer report with the input that caused it.
enum FuzzTargets {
    static let names = ["request", "json", "percent", "command", "import-line"]

    static func run(_ target: String, _ bytes: [UInt8]) {
        switch target {
        case "request": request(bytes)
        case "json": json(bytes)
        case "percent": percent(bytes)
        case "command": command(bytes)
        case "import-line": importLine(bytes)
        default: fatalError("no fuzz target \(target); the targets are \(names.joined(separator: ", "))")
        }
    }

    /// The request decoder: whatever the bytes, a refusal is a 4xx/5xx status, every request it yields keeps to
    /// the limits, and feeding the bytes in two pieces (cut where the first byte says) gives the same requests
    /// or the same refusal as feeding them at once.
    static func request(_ bytes: [UInt8]) {
        let limits = HTTPLimits(maxHeaderBytes: 2048, maxHeaderCount: 32, maxBodyBytes: 4096)
        func decode(_ pieces: [ArraySlice<UInt8>]) -> (requests: [String], status: Int?) {
            var decoder = RequestDecoder(limits: limits)
            var out: [String] = []
            do {
                for piece in pieces {
                    decoder.feed(piece)
                    while let r = try decoder.next() {
                        guard r.body.count <= limits.maxBodyBytes, r.headers.count <= limits.maxHeaderCount else {
                            fatalError("a request past the limits was accepted")
                        }
                        _ = try? r.queryParameters()
                        _ = r.keepAlive
                        out.append("\(r.method) \(r.target) \(r.version) \(r.headers.map { "\($0.name)=\($0.value)" }) \(r.body)")
                    }
                }
                return (out, nil)
            } catch {
                guard (400..<600).contains(error.status) else { fatalError("a refusal with status \(error.status)") }
                return (out, error.status)
            }
        }
        let whole = decode([bytes[...]])
        let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        let split = decode([bytes[..<cut], bytes[cut...]])
        if whole.requests != split.requests || whole.status != split.status {
            fatalError("split reads decode differently: \(whole) against \(split)")
        }
    }

    /// The JSON parser: any bytes parse or are refused; what parses writes back as JSON that parses to the same.
    static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONValue.parse(Data(bytes)) else { return }
        let written = value.json
        guard let again = try? JSONValue.parse(Data(written.utf8)) else { fatalError("written JSON does not parse: \(written)") }
        if again.json != written { fatalError("JSON does not round-trip: \(written) against \(again.json)") }
    }

    /// Percent-decoding agrees with Foundation's `removingPercentEncoding` (with `+` as a space, as queries have it).
    static func percent(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        // Ours refuses escapes that are not UTF-8 where Foundation sometimes substitutes U+FFFD ("%A9%6E" is "\u{FFFD}n"
        // to it, a fuzzer find): a query we cannot read exactly is refused (400), never guessed at.
        func agrees(_ ours: String?, _ foundation: String?) -> Bool {
            if let ours { return ours == foundation }
            return foundation == nil || (foundation!.contains("\u{FFFD}") && !text.contains("\u{FFFD}"))
        }
        let ours = PercentEncoding.decode(text)
        let foundation = text.removingPercentEncoding
        if !agrees(ours, foundation) { fatalError("percent-decoding differs from Foundation: \(String(describing: ours)) against \(String(describing: foundation))") }
        // `+` replaced byte by byte: String's own replacement works on characters, and "+" followed by a combining
        // mark is one character (a fuzzer find).
        let spaced = String(decoding: bytes.map { $0 == 0x2b ? 0x20 : $0 }, as: UTF8.self)
        let query = PercentEncoding.decode(text, plusAsSpace: true)
        if !agrees(query, spaced.removingPercentEncoding) {
            fatalError("query decoding differs from Foundation's with + as space")
        }
    }

    /// A command body: the first byte picks the command, the rest is its JSON. Decoding and validation refuse or
    /// accept; they never trap, and every refusal names a field.
    static func command(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let names = CommandCatalog.names
        let name = names[Int(first) % names.count]
        do {
            let command = try CommandCatalog.decode(name: name, json: Data(bytes.dropFirst()))
            var v = Validator()
            command.validate(&v)
            for error in v.errors where error.field.isEmpty { fatalError("a validation error without a field: \(error.message)") }
        } catch let error as DomainError {
            if case .validation(let fields) = error, fields.isEmpty || fields.contains(where: { $0.field.isEmpty }) {
                fatalError("a refusal that names no field")
            }
        } catch {
            fatalError("decoding threw something other than a DomainError: \(error)")
        }
    }

    /// One NDJSON import line: parsed into a command or refused with a DomainError, never a trap.
    static func importLine(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        do {
            let line = try CommandImporter.parse(text, index: 0)
            if line.key.isEmpty && !text.contains(#""idempotency_key":"""#) { fatalError("a line without a key") }
        } catch is DomainError {
        } catch {
            fatalError("an import line threw something other than a DomainError: \(error)")
        }
    }
}
