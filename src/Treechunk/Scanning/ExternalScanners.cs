using System.Diagnostics;
using Treechunk.IO;

namespace Treechunk.Scanning;

/// <summary>
/// trivy and grype, when installed: the image goes to them as a docker-archive file (which both
/// read offline, and which we write from any transport with our own registry auth), their
/// report goes to our stdout or --output-file as they wrote it, and their exit status is ours.
/// </summary>
public static class ExternalScanners
{
    public static readonly string[] Names = ["trivy", "grype"];

    public static string Locate(string tool) =>
        ProcessRunner.FindOnPath(tool)
        ?? throw new TreechunkException($"{tool} is not installed (no {tool} on PATH): install it, or use --scanner builtin", ExitCodes.EnvironmentError);

    /// <summary>The tool's arguments and environment for our options.</summary>
    public static (List<string> Args, Dictionary<string, string> Env) Arguments(string tool, string archive, string format, string? outputFile, Severity? failOn, string? db)
    {
        var args = new List<string>();
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (tool == "trivy")
        {
            args.AddRange(["image", "--input", archive, "--format", format switch
            {
                "spdx" => "spdx-json", "cyclonedx" => "cyclonedx", var f => f,
            }]);
            if (outputFile != null) args.AddRange(["--output", outputFile]);
            if (db != null) args.AddRange(["--cache-dir", db]);
            if (failOn is { } s)
            {
                // trivy's gate is "exit 1 when a finding of these severities exists".
                var levels = new[] { Severity.Low, Severity.Medium, Severity.High, Severity.Critical }.Where(l => l >= s).Select(l => Ratings.Name(l).ToUpperInvariant());
                args.AddRange(["--exit-code", "1", "--severity", string.Join(',', levels)]);
            }
        }
        else
        {
            args.AddRange(["docker-archive:" + archive, "-o", format switch
            {
                "spdx" => "spdx-json", "cyclonedx" => "cyclonedx-json", var f => f,
            }]);
            if (outputFile != null) args.AddRange(["--file", outputFile]);
            if (failOn is { } s) args.AddRange(["--fail-on", Ratings.Name(s)]);
            if (db != null) env["GRYPE_DB_CACHE_DIR"] = db;
        }
        return (args, env);
    }

    /// <summary>Runs the tool with our stdout and stderr; returns 0, 1 (its gate tripped) or throws.</summary>
    public static int Run(string tool, string executable, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env, Action<string>? log)
    {
        log?.Invoke($"running {executable} {string.Join(' ', args)}");
        var psi = new ProcessStartInfo(executable) { UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var process = Process.Start(psi) ?? throw new TreechunkException($"cannot start {executable}", ExitCodes.EnvironmentError);
        process.WaitForExit();
        return process.ExitCode switch
        {
            0 => ExitCodes.Ok,
            1 => ExitCodes.VerificationFailed,
            var code => throw new TreechunkException($"{tool} failed (exit {code}); its messages are above", ExitCodes.EnvironmentError),
        };
    }
}
