import Coordination
import Events
import Foundation

enum PeopleCommands {
    static let group = Group(name: "people", summary: "The surge roster's personal data.", commands: [
        "erase": Command(spec: CommandSpec(
            path: "coordctl people erase", summary: "Erase a person's name, email and unavailability reasons, everywhere.",
            arguments: "ID",
            options: [.init("reason", value: "TEXT", help: "Why: a request's reference, not the data (required; recorded in the log)."),
                      .init("actor", value: "NAME", help: "Who erases (recorded; default: COORD_ACTOR, else the user name)."),
                      .init("full", help: "VACUUM FULL the touched tables, so no old row version stays in their files (locks them meanwhile)."),
                      .json],
            details: "The person's events keep their place and hash; their personal fields read [erased]. A person.erased event\n"
                + "records who, when and why, and the digests that let `coordctl verify` prove the redacted events. Command\n"
                + "receipts and read models are cleared too. Backups and WAL archives taken before still hold the data until\n"
                + "they expire (docs/PRIVACY.md, \"Erasure\"). Running it again finishes an erasure that was cut short.\n\n"
                + databaseHelp)) { args in
            try args.requirePositionals(1...1)
            let usage = "Usage: coordctl people erase ID --reason TEXT"
            guard let reason = args.value("reason"), !reason.isEmpty else { throw UsageError("--reason is required", usage: usage) }
            let env = ProcessInfo.processInfo.environment
            let actor = args.value("actor") ?? env["COORD_ACTOR"] ?? env["USER"].map { "coordctl:\($0)" } ?? "coordctl"
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            let person = args.positionals[0]
            let outcome: Erasure.Outcome
            do {
                outcome = try await Erasure.erase(person: person, reason: reason, actor: actor, store: EventStore(pool: session.pool), full: args.flag("full"))
            } catch let error as DomainError {
                printError("Error: \(error)")
                return 1
            }
            if args.flag("json") {
                print(Output.json(["person": person, "position": outcome.position, "redacted_events": outcome.redacted,
                                   "receipts_cleared": outcome.receipts, "finished_earlier_erasure": outcome.already]))
            } else {
                print("Erased \(person)'s personal data: \(outcome.redacted) events redacted, \(outcome.receipts) receipts cleared; recorded at position \(outcome.position)."
                      + (outcome.already ? " (The person had been erased before: this finished that erasure.)" : ""))
            }
            return 0
        },
    ])
}
