import Coordination
import Events
import Foundation

/// A leaf command: its spec (help, options) and what it does. Returns the exit status.
struct Command: Sendable {
    let spec: CommandSpec
    let run: @Sendable (ParsedArguments) async throws -> Int32
}

/// A group of commands (`coordctl db ...`).
struct Group: Sendable {
    let name: String
    let summary: String
    let commands: [String: Command]
}

let databaseHelp = """
    Database: DATABASE_URL (postgres:// URI), else libpq's PG* variables, else the embedded cluster
    under COORD_DATA_DIR (default .coord/ in the working directory), started on demand.
    """

enum Registry {
    static let topCommands: [String: Command] = [
        "migrate": MigrateCommand.command,
        "status": StatusCommand.command,
        "verify": VerifyCommand.command,
        "anchor": AnchorCommand.command,
        "completion": ShellCommands.completion,
        "man": ShellCommands.manual,
    ].merging(DataCommands.views) { a, _ in a }

    static let groups: [String: Group] = [
        "db": DBCommands.group,
        "bench": BenchCommands.group,
        "demo": DemoCommands.group,
        "projections": ProjectionCommands.group,
        "tokens": TokenCommands.group,
        "people": PeopleCommands.group,
        "webhooks": WebhookCommands.group,
        "replay": ReplayCommands.group,
        "events": DataCommands.events,
        "streams": DataCommands.streams,
    ]
}

func topHelp() -> String {
    var out = """
        coordctl \(Coordination.version): administer a coord event store.

        Usage: coordctl <command> [options]
               coordctl <group> <command> [options]
               coordctl help <command>

        Commands:

        """
    var rows: [(String, String)] = Registry.topCommands.sorted { $0.key < $1.key }.map { ($0.key, $0.value.spec.summary) }
    for (name, group) in Registry.groups.sorted(by: { $0.key < $1.key }) {
        rows += group.commands.sorted { $0.key < $1.key }.map { ("\(name) \($0.key)", $0.value.spec.summary) }
    }
    let width = (rows.map(\.0.count).max() ?? 0) + 2
    for (name, summary) in rows { out += "  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + summary + "\n" }
    out += "\nOptions:\n  -h, --help     Show help.\n  -V, --version  Show the version.\n\n" + databaseHelp + "\n"
    return out
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Finds the command for `args`; returns it with the remaining arguments.
func resolve(_ args: [String]) throws -> (Command, [String])? {
    guard let first = args.first else { return nil }
    // A name that is both a view and a group (`people`, `people erase`): the group's command when one is named.
    if Registry.topCommands[first] != nil, args.count > 1, let command = Registry.groups[first]?.commands[args[1]] {
        return (command, Array(args.dropFirst(2)))
    }
    if let command = Registry.topCommands[first] { return (command, Array(args.dropFirst())) }
    if let group = Registry.groups[first] {
        let usage = "Usage: coordctl \(first) <\(group.commands.keys.sorted().joined(separator: "|"))> [options]"
        guard args.count > 1 else { throw UsageError("missing command for '\(first)'", usage: usage) }
        if args[1] == "-h" || args[1] == "--help" { return nil }
        guard let command = group.commands[args[1]] else { throw UsageError("unknown command '\(first) \(args[1])'", usage: usage) }
        return (command, Array(args.dropFirst(2)))
    }
    throw UsageError("unknown command '\(first)'", usage: "Usage: coordctl <command> [options]; see coordctl --help")
}

func groupHelp(_ name: String) -> String? {
    guard let group = Registry.groups[name] else { return nil }
    var out = "\(group.summary)\n\nUsage: coordctl \(name) <command> [options]\n\nCommands:\n"
    let width = (group.commands.keys.map(\.count).max() ?? 0) + 2
    for (n, c) in group.commands.sorted(by: { $0.key < $1.key }) {
        out += "  " + n.padding(toLength: width, withPad: " ", startingAt: 0) + c.spec.summary + "\n"
    }
    return out
}

func main() async -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    if args.isEmpty || args == ["-h"] || args == ["--help"] {
        print(topHelp(), terminator: "")
        return args.isEmpty ? 64 : 0
    }
    if args == ["--version"] || args == ["-V"] {
        print("coordctl \(Coordination.version)")
        return 0
    }
    if args.first == "help" {
        args.removeFirst()
        if args.isEmpty { print(topHelp(), terminator: ""); return 0 }
        if args.count == 1, let help = groupHelp(args[0]) { print(help, terminator: ""); return 0 }
        args.append("--help")
    }
    do {
        guard let (command, rest) = try resolve(args) else {
            print(groupHelp(args[0]) ?? topHelp(), terminator: "")
            return 0
        }
        let parsed = try command.spec.parse(rest)
        if parsed.wantsHelp {
            print(command.spec.help, terminator: "")
            return 0
        }
        return try await command.run(parsed)
    } catch let error as UsageError {
        printError("Error: \(error.message)\n\(error.usage)")
        return 64
    } catch let error as PostgresError where error.isConnectionFailure {
        // The server's words help an operator here (host, socket, authentication), and hold no event data.
        printError("Error: \(error.debugDescription)")
        return 1
    } catch {
        printError("Error: \(error)")
        return 1
    }
}

// _exit after flushing: exit() can hang in process teardown while helper threads are still alive.
let code = await main()
fflush(nil)
_exit(code)
