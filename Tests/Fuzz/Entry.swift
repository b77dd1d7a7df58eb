// libFuzzer's entry point for the one fuzz binary; COORD_FUZZ_TARGET picks the target (scripts/fuzz.sh sets it).
import Foundation

private let target: String = {
    let name = ProcessInfo.processInfo.environment["COORD_FUZZ_TARGET"] ?? ""
    guard FuzzTargets.names.contains(name) else {
        FileHandle.standardError.write(Data("COORD_FUZZ_TARGET must be one of \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
        exit(64)
    }
    return name
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    FuzzTargets.run(target, bytes)
    return 0
}
