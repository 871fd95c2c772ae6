import Testing

@testable import Sluice

/// Tests the list through which handlers hand their finished attempts to the worker's event loop.
@Suite struct FinishedAttemptsTests {
    static func attempt(_ runID: Int64) -> FinishedAttempts.Attempt {
        FinishedAttempts.Attempt(runID: runID, attempt: 1, outcome: .succeeded(output: "{}"))
    }

    @Test func onlyFirstAppendSignals() {
        let finished = FinishedAttempts()

        #expect(finished.append(Self.attempt(1)))
        #expect(!finished.append(Self.attempt(2)))
        #expect(!finished.append(Self.attempt(3)))
    }

    @Test func takeAllKeepsOrderAndEmpties() {
        let finished = FinishedAttempts()
        _ = finished.append(Self.attempt(1))
        _ = finished.append(Self.attempt(2))

        #expect(finished.takeAll().map(\.runID) == [1, 2])
        #expect(finished.takeAll().isEmpty)
    }

    @Test func appendAfterTakeAllSignalsAgain() {
        let finished = FinishedAttempts()
        _ = finished.append(Self.attempt(1))
        _ = finished.takeAll()

        #expect(finished.append(Self.attempt(2)))
    }

    @Test func concurrentAppendsSignalOncePerEmptyList() async {
        let finished = FinishedAttempts()
        let signals = await withTaskGroup(of: Bool.self) { group in
            for runID in 1...200 {
                group.addTask { finished.append(Self.attempt(Int64(runID))) }
            }
            var count = 0
            for await signalled in group where signalled {
                count += 1
            }
            return count
        }

        #expect(signals == 1)
        #expect(Set(finished.takeAll().map(\.runID)) == Set(1...200))
    }

    @Test func stateIgnoresTheSignal() {
        var state = WorkerState(slots: 2, queues: ["default"], lanes: 1)
        _ = state.registered()

        #expect(state.apply(.attemptsFinished).isEmpty)
    }
}
