import Foundation

/// Where a command writes its output and its error messages; tests capture both.
struct Console: Sendable {
    var writeOutput: @Sendable (String) -> Void
    var writeError: @Sendable (String) -> Void

    /// Standard output and standard error.
    static let standard = Console(
        writeOutput: { FileHandle.standardOutput.write(Data($0.utf8)) },
        writeError: { FileHandle.standardError.write(Data($0.utf8)) })

    /// Writes one line to the output.
    func print(_ line: String) {
        writeOutput(line + "\n")
    }

    /// Writes one line to the error stream.
    func printError(_ line: String) {
        writeError(line + "\n")
    }

    /// Writes rows as columns aligned with spaces, under a header line.
    func printTable(header: [String], rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        for row in [header] + rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  "))
        }
    }
}
