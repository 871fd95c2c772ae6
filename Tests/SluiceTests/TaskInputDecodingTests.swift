import Foundation
import Testing

@testable import Sluice

/// TaskDefinition.decodeInputs, which decodes the inputs of a claim in one JSONDecoder call.
@Suite struct TaskInputDecodingTests {
    struct Point: Codable, Sendable, Equatable {
        var x: Int
    }

    typealias PointTask = TaskDefinition<Point, Empty>

    @Test func batchDecodesEveryInput() throws {
        let results = PointTask.decodeInputs(["{\"x\": 1}", "{\"x\": 2}", "{\"x\": 3}"], with: JSONDecoder())
        #expect(results.count == 3)
        #expect(try results.map { try $0.get() } == [Point(x: 1), Point(x: 2), Point(x: 3)])
    }

    @Test func invalidInputFailsAlone() throws {
        let results = PointTask.decodeInputs(["{\"x\": 1}", "{\"y\": 2}", "{\"x\": 3}"], with: JSONDecoder())
        #expect(results.count == 3)
        #expect(try results[0].get() == Point(x: 1))
        #expect(try results[2].get() == Point(x: 3))
        guard case .failure(let error) = results[1] else {
            Issue.record("the input without x decoded")
            return
        }
        // The error comes from decoding the input alone, so the missing key is at the top level.
        guard case DecodingError.keyNotFound(let key, let context) = error else {
            Issue.record("unexpected error \(error)")
            return
        }
        #expect(key.stringValue == "x")
        #expect(context.codingPath.isEmpty)
    }

    @Test func singleInputDecodesAlone() throws {
        let results = PointTask.decodeInputs(["{\"x\": 7}"], with: JSONDecoder())
        #expect(results.count == 1)
        #expect(try results[0].get() == Point(x: 7))
    }

    @Test func noInputsGiveNoResults() {
        #expect(PointTask.decodeInputs([], with: JSONDecoder()).isEmpty)
    }
}
