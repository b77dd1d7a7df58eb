import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Cluster tasks")
struct TaskTests {
    @Test("every lifecycle step is allowed exactly from the states the lifecycle names")
    func transitions() async throws {
        let s = try await makeService()
        try await seed(s)
        // For each action, the states it is allowed from; every other state must refuse it.
        let allowed: [String: Set<String>] = [
            "start": ["open", "blocked"], "block": ["open", "in_progress"], "complete": ["in_progress"],
            "verify": ["completed"], "cancel": ["open", "in_progress", "blocked", "completed"], "reopen": ["completed", "cancelled"],
        ]
        // Paths from open to each state.
        let paths: [String: [String]] = [
            "open": [], "in_progress": ["start"], "blocked": ["block"], "completed": ["start", "complete"],
            "verified": ["start", "complete", "verify"], "cancelled": ["cancel"],
        ]
        func apply(_ action: String, _ id: String) async throws {
            switch action {
            case "start": _ = try await s.execute(StartTask(id: id), ctx)
            case "block": _ = try await s.execute(BlockTask(id: id, reason: "road cut"), ctx)
            case "complete": _ = try await s.execute(CompleteTask(id: id), ctx)
            case "verify": _ = try await s.execute(VerifyTask(id: id), ctx)
            case "cancel": _ = try await s.execute(CancelTask(id: id), ctx)
            case "reopen": _ = try await s.execute(ReopenTask(id: id), ctx)
            default: Issue.record("unknown action")
            }
        }
        var n = 0
        for (state, path) in paths {
            for (action, from) in allowed {
                n += 1
                let id = "T-\(n)"
                _ = try await s.execute(CreateTask(id: id, response: "PHL-2026-TC-01", cluster: "WSH", title: "Water trucking", priority: "high"), ctx)
                for step in path { try await apply(step, id) }
                let error = await domainError { try await apply(action, id) }
                if from.contains(state) {
                    #expect(error == nil, "\(action) from \(state)")
                } else {
                    #expect(error == .invalidTransition(kind: "task", id: id, current: state, action: action), "\(action) from \(state)")
                }
            }
        }
    }

    @Test("create validates cluster, priority and P-code; comments and assignment are kept")
    func createAndComment() async throws {
        let s = try await makeService()
        try await seed(s)
        let bad = await domainError {
            _ = try await s.execute(CreateTask(response: "PHL-2026-TC-01", cluster: "XYZ", title: " ", priority: "asap", pcode: "0837"), ctx)
        }
        guard case .validation(let errors) = bad else { Issue.record("expected validation"); return }
        #expect(Set(errors.map(\.field)) == ["cluster", "title", "priority", "pcode"])
        let t = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "PRO-GBV", title: "Safe spaces",
                                               priority: "urgent", due: day("2026-11-20"), pcode: "PH0837", leadOrg: "UNFPA"), ctx)
        #expect(try stateJSON(t)["status"] as? String == "open")
        _ = try await s.execute(AssignTask(id: "T-1", assignee: "GBV sub-cluster coordinator"), ctx)
        let c = try await s.execute(CommentTask(id: "T-1", text: "Two sites identified"), ctx)
        let state = try stateJSON(c)
        #expect(state["assignee"] as? String == "GBV sub-cluster coordinator")
        #expect((state["comments"] as? [[String: Any]])?.first?["by"] as? String == "officer-1")
        #expect(await domainError { _ = try await s.execute(StartTask(id: "T-404"), ctx) } == .notFound(kind: "task", id: "T-404"))
        #expect(await domainError {
            _ = try await s.execute(CreateTask(response: "NOPE", cluster: "WSH", title: "x", priority: "low"), ctx)
        } == .notFound(kind: "response", id: "NOPE"))
    }
}
