import Events
import Foundation

/// Who issues a command, why, and under which guarantees. Every event a command writes carries it.
public struct CommandContext: Sendable {
    /// The token subject or operator: becomes every event's `actor`.
    public var actor: String
    /// One id for everything caused by one user intent (an HTTP request, an import line).
    public var correlationID: String
    public var causationID: String?
    /// `api`, `coordctl`, `import`, `demo`, `test`...
    public var source: String
    /// A retry with the same key and the same command returns the original result and writes nothing.
    public var idempotencyKey: String?
    /// `If-Match`: the version the client last saw of the resource it changes.
    public var expectedVersion: Int64?
    /// When the command arrived; the default `occurred_at`.
    public var receivedAt: Date
    /// What the caller's token may touch (unscoped: everything).
    public var scope: Scope = .unscoped

    public init(actor: String, correlationID: String = UUID.random().lowercasedString, causationID: String? = nil,
                source: String, idempotencyKey: String? = nil, expectedVersion: Int64? = nil, receivedAt: Date = Date()) {
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
        self.source = source
        self.idempotencyKey = idempotencyKey
        self.expectedVersion = expectedVersion
        self.receivedAt = receivedAt
    }

    func metadata(requestHash: String?) -> EventMetadata {
        EventMetadata(actor: actor, correlationID: correlationID, causationID: causationID, source: source,
                      idempotencyKey: idempotencyKey, requestHash: requestHash)
    }
}

/// What a command did: the resource it created or changed, its state now, and where its events landed.
public struct CommandResult: Sendable {
    /// `deployment`, `task`, `stock`...
    public let kind: String
    public let id: String
    /// True when the command created the resource (HTTP 201).
    public let created: Bool
    /// Global position of the last event written (for a duplicate: of the original command).
    public let position: Int64
    /// Version of the resource's stream after the command.
    public let version: Int64
    /// True when an idempotent retry found the original command: nothing was written.
    public let duplicate: Bool
    /// The resource's current state as a JSON object.
    public let state: JSONText
    /// The id of the first event the command wrote on the resource's stream: for a stock movement, the
    /// movement's id (what a reversal names).
    public var eventID: UUID? = nil

    /// The state with `position` and `version` added, as the API answers; a stock movement's answer also
    /// carries the movement's `id`.
    public var body: String {
        var text = state.text
        guard text.hasSuffix("}") else { return text }
        text.removeLast()
        let sep = text.count > 1 ? "," : ""
        let movement = kind == "stock" ? eventID.map { "\"id\":\"\($0.lowercasedString)\"," } ?? "" : ""
        return text + sep + movement + "\"position\":\(position),\"version\":\(version)}"
    }
}
