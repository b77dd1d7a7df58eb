import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Surge deployments")
struct SurgeTests {
    func roster(_ s: CoordinationService) async throws {
        try await seed(s)
        _ = try await s.execute(RegisterPerson(id: "P-001", name: "Maria Santos", email: "maria@example.org", profiles: ["SHELTER_NFI", "CCCM"]), ctx)
        _ = try await s.execute(RegisterPerson(id: "P-002", name: "Arjun Rao", profiles: ["WASH"], homeCountry: "IND"), ctx)
    }

    @Test("the lifecycle: requested, confirmed, deployed, extended, completed; wrong steps name the current state")
    func lifecycle() async throws {
        let s = try await makeService()
        try await roster(s)
        let r = try await s.execute(RequestDeployment(id: "D-1", person: "P-001", response: "PHL-2026-TC-01", profile: "SHELTER_NFI",
                                                      cluster: "SHL", start: day("2026-11-10"), end: day("2026-12-10"), dutyStation: "Tacloban"), ctx)
        #expect(r.created)
        #expect(try stateJSON(r)["status"] as? String == "requested")
        #expect(await domainError { _ = try await s.execute(ArriveDeployment(id: "D-1"), ctx) }
                == .invalidTransition(kind: "deployment", id: "D-1", current: "requested", action: "arrive"))
        #expect(await domainError { _ = try await s.execute(ExtendDeployment(id: "D-1", end: day("2026-12-20")), ctx) }
                == .invalidTransition(kind: "deployment", id: "D-1", current: "requested", action: "extend"))
        _ = try await s.execute(ConfirmDeployment(id: "D-1"), ctx)
        _ = try await s.execute(ArriveDeployment(id: "D-1"), ctx)
        #expect(await domainError { _ = try await s.execute(ExtendDeployment(id: "D-1", end: day("2026-12-01")), ctx) }?.caseName == "validation")
        let extended = try await s.execute(ExtendDeployment(id: "D-1", end: day("2026-12-31")), ctx)
        #expect(try stateJSON(extended)["end"] as? String == "2026-12-31")
        #expect(try stateJSON(extended)["status"] as? String == "deployed")
        #expect(await domainError { _ = try await s.execute(CancelDeployment(id: "D-1"), ctx) }
                == .invalidTransition(kind: "deployment", id: "D-1", current: "deployed", action: "cancel"))
        let done = try await s.execute(CompleteDeployment(id: "D-1"), ctx)
        #expect(try stateJSON(done)["status"] as? String == "completed")
        #expect(done.version == 5)
        #expect(await domainError { _ = try await s.execute(ConfirmDeployment(id: "NOPE"), ctx) } == .notFound(kind: "deployment", id: "NOPE"))
    }

    @Test("overlapping deployments and unavailability are refused, naming the conflict but no personal data")
    func overlaps() async throws {
        let s = try await makeService()
        try await roster(s)
        _ = try await s.execute(RequestDeployment(id: "D-1", person: "P-001", response: "PHL-2026-TC-01", profile: "SHELTER_NFI",
                                                  start: day("2026-11-10"), end: day("2026-12-10")), ctx)
        let overlap = await domainError {
            _ = try await s.execute(RequestDeployment(id: "D-2", person: "P-001", response: "PHL-2026-TC-01", profile: "CCCM",
                                                      start: day("2026-12-10"), end: day("2026-12-20")), ctx)
        }
        #expect(overlap == .deploymentOverlap(person: "P-001", conflicting: "D-1", kind: "deployment"))
        #expect(overlap?.caseName == "deployment-overlap")
        #expect(!(overlap?.description.contains("Maria") ?? true))
        // Adjacent is fine; a cancelled deployment frees its dates.
        _ = try await s.execute(RequestDeployment(id: "D-3", person: "P-001", response: "PHL-2026-TC-01", profile: "CCCM",
                                                  start: day("2026-12-11"), end: day("2026-12-20")), ctx)
        _ = try await s.execute(CancelDeployment(id: "D-1"), ctx)
        _ = try await s.execute(RequestDeployment(id: "D-4", person: "P-001", response: "PHL-2026-TC-01", profile: "CCCM",
                                                  start: day("2026-11-01"), end: day("2026-12-01")), ctx)
        // Unavailability: refused over a booking, and blocks later requests.
        #expect(await domainError { _ = try await s.execute(AddUnavailability(id: "P-001", from: day("2026-12-15"), to: day("2027-01-05")), ctx) }
                == .deploymentOverlap(person: "P-001", conflicting: "D-3", kind: "deployment"))
        _ = try await s.execute(AddUnavailability(id: "P-002", from: day("2026-12-24"), to: day("2027-01-02"), reason: "leave"), ctx)
        #expect(await domainError {
            _ = try await s.execute(RequestDeployment(person: "P-002", response: "PHL-2026-TC-01", profile: "WASH",
                                                      start: day("2026-12-01"), end: day("2026-12-24")), ctx)
        }?.caseName == "deployment-overlap")
        // Extending into another booking is refused too.
        _ = try await s.execute(ConfirmDeployment(id: "D-4"), ctx)
        _ = try await s.execute(ArriveDeployment(id: "D-4"), ctx)
        #expect(await domainError { _ = try await s.execute(ExtendDeployment(id: "D-4", end: day("2026-12-12")), ctx) }
                == .deploymentOverlap(person: "P-001", conflicting: "D-3", kind: "deployment"))
        // A profile the person is not rostered for, an unknown person, dates reversed.
        #expect(await domainError {
            _ = try await s.execute(RequestDeployment(person: "P-002", response: "PHL-2026-TC-01", profile: "IM", start: day("2027-02-01"), end: day("2027-02-10")), ctx)
        }?.caseName == "rule-violation")
        #expect(await domainError {
            _ = try await s.execute(RequestDeployment(person: "P-999", response: "PHL-2026-TC-01", profile: "IM", start: day("2027-02-01"), end: day("2027-02-10")), ctx)
        } == .notFound(kind: "person", id: "P-999"))
        #expect(await domainError {
            _ = try await s.execute(RequestDeployment(person: "P-002", response: "PHL-2026-TC-01", profile: "WASH", start: day("2027-02-10"), end: day("2027-02-01")), ctx)
        } == .validation([FieldError("end", "must not be before start")]))
    }

    @Test("concurrent overlapping requests for one person: exactly one is booked")
    func concurrentRequests() async throws {
        let s = try await makeService()
        try await roster(s)
        let booked = await withTaskGroup(of: Int.self) { group in
            for i in 0..<20 {
                group.addTask {
                    let start = day("2026-11-01").adding(days: i % 5)
                    let r = try? await s.execute(RequestDeployment(id: "C-\(i)", person: "P-002", response: "PHL-2026-TC-01", profile: "WASH",
                                                                   start: start, end: start.adding(days: 30)), ctx)
                    return r == nil ? 0 : 1
                }
            }
            return await group.reduce(0, +)
        }
        #expect(booked == 1)
        let bookings = try await s.store.read(stream: Streams.person("P-002")).filter { $0.type == PersonBooked.eventType }
        #expect(bookings.count == 1)
    }

    @Test("a closed response takes no new deployments or tasks")
    func closedResponse() async throws {
        let s = try await makeService()
        try await roster(s)
        _ = try await s.execute(ChangeSeverity(id: "PHL-2026-TC-01", severity: "red"), ctx)
        let closed = try await s.execute(CloseResponse(id: "PHL-2026-TC-01"), ctx)
        let state = try stateJSON(closed)
        #expect(state["status"] as? String == "closed")
        #expect((state["severity_history"] as? [[String: Any]])?.map { $0["severity"] as? String } == ["orange", "red"])
        #expect(await domainError {
            _ = try await s.execute(RequestDeployment(person: "P-002", response: "PHL-2026-TC-01", profile: "WASH", start: day("2027-02-01"), end: day("2027-02-10")), ctx)
        } == .rule("response PHL-2026-TC-01 is closed"))
        #expect(await domainError { _ = try await s.execute(CloseResponse(id: "PHL-2026-TC-01"), ctx) }?.caseName == "invalid-transition")
    }
}
