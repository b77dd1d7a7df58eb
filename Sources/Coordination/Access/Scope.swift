import Events
import Foundation

/// What a token may reach (docs/PRIVACY.md, "Scopes"): countries, responses and warehouses. A warehouse is in scope
/// when it is named or its country is; a response likewise; a deployment or a task goes with its response, a
/// transfer with both its warehouses. Empty everywhere: unscoped (admins always are). Reference data of the whole
/// region (the item catalogue, the surge roster) is written by unscoped tokens only, and read by all.
public struct Scope: Sendable, Equatable {
    public private(set) var countries: [String]
    public private(set) var responses: [String]
    public private(set) var warehouses: [String]

    public static let unscoped = Scope()

    public init(countries: [String] = [], responses: [String] = [], warehouses: [String] = []) {
        self.countries = Array(Set(countries)).sorted()
        self.responses = Array(Set(responses)).sorted()
        self.warehouses = Array(Set(warehouses)).sorted()
    }

    public var isUnscoped: Bool { countries.isEmpty && responses.isEmpty && warehouses.isEmpty }

    public func allows(warehouse: String, country: String) -> Bool {
        isUnscoped || warehouses.contains(warehouse) || countries.contains(country)
    }

    public func allows(response: String, country: String) -> Bool {
        isUnscoped || responses.contains(response) || countries.contains(country)
    }

    /// Each id checked: countries ISO 3166-1 alpha-3, the others identifiers.
    public func validate() throws {
        var v = Validator()
        for c in countries { v.country(c, "country") }
        for r in responses where !Validator.isID(r) { v.fail("response", "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}") }
        for w in warehouses where !Validator.isID(w) { v.fail("warehouse", "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}") }
        try v.check()
    }

    /// `countries PHL; responses PHL-2026-TC-01; warehouses MNL`, or `unscoped`: for listings.
    public var summary: String {
        guard !isUnscoped else { return "unscoped" }
        return [("countries", countries), ("responses", responses), ("warehouses", warehouses)].filter { !$0.1.isEmpty }
            .map { "\($0.0) \($0.1.joined(separator: ","))" }.joined(separator: "; ")
    }

    /// Stored as three text arrays; read back from their comma-joined text (ids hold no comma).
    static func list(_ text: String) -> [String] { text.split(separator: ",").map(String.init) }
}

/// What a command touches, for its scope check.
enum ScopeSubject: Sendable, Equatable {
    /// An existing warehouse: its country is read from the log.
    case warehouse(String)
    /// A warehouse in `country` (one being registered, or moved there).
    case warehouseIn(String, country: String)
    case response(String)
    case responseIn(String, country: String)
    case deployment(String)
    case task(String)
    case transfer(String)
    /// A stock movement by its id: the warehouse of its card.
    case movement(String)
    /// Reference data of the whole region.
    case region

    var description: String {
        switch self {
        case .warehouse(let w): return "warehouse \(w)"
        case .warehouseIn(let w, let c): return "warehouse \(w) in \(c)"
        case .response(let r): return "response \(r)"
        case .responseIn(let r, let c): return r.isEmpty ? "a response in \(c)" : "response \(r) in \(c)"
        case .deployment(let d): return "deployment \(d)"
        case .task(let t): return "task \(t)"
        case .transfer(let t): return "transfer \(t)"
        case .movement(let m): return "movement \(m)"
        case .region: return "the region's reference data (items, the roster)"
        }
    }
}

/// Commands whose resource is named by `id`.
protocol IdentifiedCommand { var id: String { get } }
extension AmendDeployment: IdentifiedCommand {}
extension ConfirmDeployment: IdentifiedCommand {}
extension ArriveDeployment: IdentifiedCommand {}
extension ExtendDeployment: IdentifiedCommand {}
extension CompleteDeployment: IdentifiedCommand {}
extension CancelDeployment: IdentifiedCommand {}
extension AmendTask: IdentifiedCommand {}
extension AssignTask: IdentifiedCommand {}
extension StartTask: IdentifiedCommand {}
extension BlockTask: IdentifiedCommand {}
extension CompleteTask: IdentifiedCommand {}
extension VerifyTask: IdentifiedCommand {}
extension CancelTask: IdentifiedCommand {}
extension ReopenTask: IdentifiedCommand {}
extension CommentTask: IdentifiedCommand {}
extension ChangeSeverity: IdentifiedCommand {}
extension CloseResponse: IdentifiedCommand {}
extension AddAreas: IdentifiedCommand {}
extension ChangePhase: IdentifiedCommand {}

extension CoordinationService {
    static let deploymentSteps: [any DomainCommand.Type] = [AmendDeployment.self, ConfirmDeployment.self, ArriveDeployment.self,
                                                            ExtendDeployment.self, CompleteDeployment.self, CancelDeployment.self]
    static let taskSteps: [any DomainCommand.Type] = [AmendTask.self, AssignTask.self, StartTask.self, BlockTask.self, CompleteTask.self,
                                                      VerifyTask.self, CancelTask.self, ReopenTask.self, CommentTask.self]
    static let responseSteps: [any DomainCommand.Type] = [ChangeSeverity.self, CloseResponse.self, AddAreas.self, ChangePhase.self]

    /// What `command` touches. A command not named here is reference data of the region: unscoped tokens only, so
    /// a new command is refused to scoped tokens until it says what it touches.
    static func scopeSubjects(of command: any DomainCommand) -> [ScopeSubject] {
        let type = type(of: command)
        if let c = command as? IdentifiedCommand {
            if deploymentSteps.contains(where: { $0 == type }) { return [.deployment(c.id)] }
            if taskSteps.contains(where: { $0 == type }) { return [.task(c.id)] }
            if responseSteps.contains(where: { $0 == type }) { return [.response(c.id)] }
        }
        switch command {
        case let c as RegisterWarehouse: return [.warehouseIn(c.code, country: c.country)]
        case let c as AmendWarehouse: return [.warehouse(c.code)] + (c.country.map { [.warehouseIn(c.code, country: $0)] } ?? [])
        case let c as SetLevels: return [.warehouse(c.code)]
        case let c as ReceiveStock: return [.warehouse(c.warehouse)]
        case let c as DispatchStock: return [.warehouse(c.warehouse)]
        case let c as AdjustStock: return [.warehouse(c.warehouse)]
        case let c as CountStock: return [.warehouse(c.warehouse)]
        case let c as ReverseMovement: return [.movement(c.id)]
        case let c as TransferStock: return [.warehouse(c.from), .warehouse(c.to)]
        case let c as ReceiveTransfer: return [.transfer(c.id)]
        case let c as CancelTransfer: return [.transfer(c.id)]
        case let c as DeclareResponse: return [.responseIn(c.id ?? "", country: c.country)]
        case let c as AmendResponse: return [.response(c.id)] + (c.country.map { [.responseIn(c.id, country: $0)] } ?? [])
        case let c as RequestDeployment: return [.response(c.response)]
        case let c as CreateTask: return [.response(c.response)]
        default: return [.region]
        }
    }

    /// Refuses `command` (403 `out-of-scope`) when it touches anything outside `scope`. A resource the log does not
    /// hold passes here, so the command answers it as not found.
    func authorize(_ command: any DomainCommand, scope: Scope) async throws {
        guard !scope.isUnscoped else { return }
        for subject in Self.scopeSubjects(of: command) where try await !allows(subject, scope) {
            throw DomainError.outOfScope(subject.description)
        }
    }

    private func allows(_ subject: ScopeSubject, _ scope: Scope) async throws -> Bool {
        func load<S: AggregateState>(_ stream: String, _ type: S.Type) async throws -> S? {
            let (state, version) = try await runner.load(stream, as: S.self, fresh: true)
            return version == 0 ? nil : state
        }
        switch subject {
        case .region: return false
        case let .warehouseIn(w, country): return scope.allows(warehouse: w, country: country)
        case let .responseIn(r, country): return scope.allows(response: r, country: country)
        case .warehouse(let w):
            guard let s = try await load(Streams.warehouse(w), WarehouseState.self) else { return true }
            return scope.allows(warehouse: w, country: s.country)
        case .response(let r):
            guard let s = try await load(Streams.response(r), ResponseState.self) else { return true }
            return scope.allows(response: r, country: s.country)
        case .deployment(let d):
            guard let s = try await load(Streams.deployment(d), DeploymentState.self) else { return true }
            return try await allows(.response(s.response), scope)
        case .task(let t):
            guard let s = try await load(Streams.task(t), TaskState.self) else { return true }
            return try await allows(.response(s.response), scope)
        case .transfer(let t):
            guard let s = try await load(Streams.transfer(t), TransferState.self) else { return true }
            guard try await allows(.warehouse(s.from), scope) else { return false }
            return try await allows(.warehouse(s.to), scope)
        case .movement(let m):
            guard let uuid = UUID(uuidString: m), let event = try await event(id: uuid), event.stream.hasPrefix("stock-") else { return true }
            let card = CommandRunner.kindAndID(of: event.stream).1
            return try await allows(.warehouse(String(card.prefix { $0 != ":" })), scope)
        }
    }
}

/// A scope resolved against the read models for reading: the warehouses and responses it reaches (those named, and
/// those of its countries). Lists, exports, resources, replay, the log and the live feed show only what it reaches.
public struct ReadScope: Sendable, Equatable {
    public let warehouses: Set<String>
    public let responses: Set<String>

    public init(warehouses: Set<String>, responses: Set<String>) { (self.warehouses, self.responses) = (warehouses, responses) }

    /// Nil for an unscoped token: it reads everything.
    public static func resolve(_ scope: Scope, queries: ReadModelQueries) async throws -> ReadScope? {
        guard !scope.isUnscoped else { return nil }
        var (warehouses, responses) = (Set(scope.warehouses), Set(scope.responses))
        if !scope.countries.isEmpty {
            let t = try await queries.table("""
                SELECT 'w' AS kind, code AS id FROM rm_warehouses WHERE country = ANY(\(scope.countries)::text[])
                UNION ALL SELECT 'r', id FROM rm_responses WHERE country = ANY(\(scope.countries)::text[])
                """)
            for row in t.rows {
                if row[0] == "w" { warehouses.insert(row[1] ?? "") } else { responses.insert(row[1] ?? "") }
            }
        }
        return ReadScope(warehouses: warehouses, responses: responses)
    }

    var warehouseList: [String] { warehouses.sorted() }
    var responseList: [String] { responses.sorted() }

    /// The streams of `streams` this scope shows: a warehouse's and its stock cards' when it reaches the warehouse, a
    /// response's when it reaches the response, a transfer's when it reaches either end, a deployment's and a task's
    /// with their response; the region's reference data (items, people, the clock) to everyone.
    public func visible(_ streams: Set<String>, queries: ReadModelQueries) async throws -> Set<String> {
        var shown = Set<String>()
        var transfers: [String] = [], deployments: [String] = [], tasks: [String] = []
        for stream in streams {
            let (kind, id) = CommandRunner.kindAndID(of: stream)
            switch kind {
            case "warehouse": if warehouses.contains(id) { shown.insert(stream) }
            case "stock": if warehouses.contains(String(id.prefix { $0 != ":" })) { shown.insert(stream) }
            case "response": if responses.contains(id) { shown.insert(stream) }
            case "transfer": transfers.append(id)
            case "deployment": deployments.append(id)
            case "task": tasks.append(id)
            default: shown.insert(stream)
            }
        }
        if !(transfers.isEmpty && deployments.isEmpty && tasks.isEmpty) {
            let t = try await queries.table("""
                SELECT 'transfer-' || id FROM rm_transfers WHERE id = ANY(\(transfers)::text[])
                  AND (from_warehouse = ANY(\(warehouseList)::text[]) OR to_warehouse = ANY(\(warehouseList)::text[]))
                UNION ALL SELECT 'deployment-' || id FROM rm_deployments WHERE id = ANY(\(deployments)::text[]) AND response = ANY(\(responseList)::text[])
                UNION ALL SELECT 'task-' || id FROM rm_tasks WHERE id = ANY(\(tasks)::text[]) AND response = ANY(\(responseList)::text[])
                """)
            for row in t.rows { if let s = row[0] { shown.insert(s) } }
        }
        return shown
    }

    static let bookingTypes: Set<String> = [PersonBooked.eventType, PersonBookingExtended.eventType, PersonBookingChanged.eventType,
                                            PersonBookingReleased.eventType]

    /// The stream whose visibility an event has: its own, except a person's booking, which goes with its deployment
    /// (a roster member's record is the region's; where they are booked is the response's).
    public static func subject(of event: RecordedEvent) -> String {
        guard bookingTypes.contains(event.type), let value = try? JSONValue.parse(Data(event.data.text.utf8)),
              case .string(let deployment)? = value["deployment"] else { return event.stream }
        return Streams.deployment(deployment)
    }

    /// Of `events`, those this scope shows (`visible`, by each event's `subject`).
    public func filter(_ events: [RecordedEvent], queries: ReadModelQueries) async throws -> [RecordedEvent] {
        let subjects = events.map(Self.subject)
        let shown = try await visible(Set(subjects), queries: queries)
        return zip(events, subjects).filter { shown.contains($0.1) }.map(\.0)
    }

    /// A creation event decides its stream at once (the read models may not hold it yet); nil for other events.
    public func decides(_ event: DomainEvent) -> Bool? {
        switch event {
        case .deploymentRequested(let p): return responses.contains(p.response)
        case .taskCreated(let p): return responses.contains(p.response)
        case .transferCreated(let p): return warehouses.contains(p.from) || warehouses.contains(p.to)
        default: return nil
        }
    }
}
