/// Command-line parsing for coordd and coordctl: kebab-case long options (`--writers 32`,
/// `--writers=32`), boolean flags, `-h/--help`, and `--` to end options.
public struct CommandSpec: Sendable {
    public struct Option: Sendable {
        public let name: String
        /// Nil for a flag; otherwise the placeholder shown in help (`N`, `FILE`).
        public let value: String?
        public let help: String
        public let short: Character?

        public init(_ name: String, value: String? = nil, short: Character? = nil, help: String) {
            self.name = name
            self.value = value
            self.help = help
            self.short = short
        }
    }

    public let path: String
    public let summary: String
    public let arguments: String
    public let options: [Option]
    public let details: String

    public init(path: String, summary: String, arguments: String = "", options: [Option] = [], details: String = "") {
        self.path = path
        self.summary = summary
        self.arguments = arguments
        self.options = options
        self.details = details
    }

    public var usage: String {
        var u = "Usage: \(path)"
        if !options.isEmpty { u += " [options]" }
        if !arguments.isEmpty { u += " \(arguments)" }
        return u
    }

    public var help: String {
        var out = "\(summary)\n\n\(usage)\n"
        if !details.isEmpty { out += "\n\(details)\n" }
        let all = options + [Option("help", short: "h", help: "Show this help.")]
        out += "\nOptions:\n"
        let labels = all.map { o -> String in
            var label = o.short.map { "-\($0), " } ?? "    "
            label += "--\(o.name)"
            if let v = o.value { label += " \(v)" }
            return label
        }
        let width = (labels.map(\.count).max() ?? 0) + 2
        for (label, option) in zip(labels, all) {
            out += "  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + option.help + "\n"
        }
        return out
    }
}

/// A usage error: printed as `Error: ...` plus the usage line, exit status 64.
public struct UsageError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let usage: String
    public init(_ message: String, usage: String) {
        self.message = message
        self.usage = usage
    }
    public var description: String { message }
}

public struct ParsedArguments: Sendable {
    public var positionals: [String] = []
    public var values: [String: String] = [:]
    /// Every value given for each option, in order (for repeatable options; `values` keeps the last).
    public var repeated: [String: [String]] = [:]
    public var flags: Set<String> = []
    public var wantsHelp = false
    let usage: String

    public func flag(_ name: String) -> Bool { flags.contains(name) }
    public func value(_ name: String) -> String? { values[name] }
    /// Every value of a repeatable option (`--country PHL --country NPL`), in order.
    public func values(_ name: String) -> [String] { repeated[name] ?? [] }

    /// An integer option within `range`, or `defaultValue` when absent.
    public func int(_ name: String, default defaultValue: Int, range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let v = Int(text), range.contains(v) else {
            throw UsageError("--\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)", usage: usage)
        }
        return v
    }

    public func requirePositionals(_ count: ClosedRange<Int>) throws {
        guard count.contains(positionals.count) else {
            throw UsageError(positionals.count < count.lowerBound ? "missing argument" : "unexpected argument '\(positionals[count.upperBound])'",
                             usage: usage)
        }
    }
}

extension CommandSpec {
    /// Parses `arguments` (without the command path). Unknown options are usage errors.
    public func parse(_ arguments: [String]) throws -> ParsedArguments {
        var result = ParsedArguments(usage: usage)
        var i = 0
        var optionsEnded = false
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            if optionsEnded || !arg.hasPrefix("-") || arg == "-" {
                result.positionals.append(arg)
                continue
            }
            if arg == "--" { optionsEnded = true; continue }
            if arg == "-h" || arg == "--help" { result.wantsHelp = true; continue }
            var name: String
            var inline: String?
            if arg.hasPrefix("--") {
                name = String(arg.dropFirst(2))
                if let eq = name.firstIndex(of: "=") {
                    inline = String(name[name.index(after: eq)...])
                    name = String(name[..<eq])
                }
            } else {
                guard arg.count == 2, let option = options.first(where: { $0.short == arg.last }) else {
                    throw UsageError("unknown option '\(arg)'", usage: usage)
                }
                name = option.name
            }
            guard let option = options.first(where: { $0.name == name }) else {
                throw UsageError("unknown option '--\(name)'", usage: usage)
            }
            if option.value == nil {
                if inline != nil { throw UsageError("--\(name) takes no value", usage: usage) }
                result.flags.insert(name)
            } else if let inline {
                result.values[name] = inline
                result.repeated[name, default: []].append(inline)
            } else {
                guard i < arguments.count else { throw UsageError("--\(name) needs a value", usage: usage) }
                result.values[name] = arguments[i]
                result.repeated[name, default: []].append(arguments[i])
                i += 1
            }
        }
        return result
    }
}
