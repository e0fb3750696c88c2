using System.Diagnostics;

namespace Treechunk.Tests.Support;

public sealed record ProcResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs real programs (peers such as skopeo, umoci, ostree, and our own CLI).</summary>
public static class Proc
{
    public static ProcResult Run(string file, IEnumerable<string> args, string? cwd = null,
        IDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = cwd ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} timed out");
        }
        return new ProcResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs and asserts success, returning stdout.</summary>
    public static string Check(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"{file} {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }

    /// <summary>Runs with <paramref name="stdin"/> as input and returns stdout as bytes (decompressors); fails on a non-zero exit.</summary>
    public static byte[] RunBytes(string file, IEnumerable<string> args, byte[] stdin)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var feed = Task.Run(() => { p.StandardInput.BaseStream.Write(stdin); p.StandardInput.Close(); });
        using var stdout = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(entireProcessTree: true); throw new TimeoutException($"{file} timed out"); }
        feed.Wait();
        copy.Wait();
        if (p.ExitCode != 0) throw new Xunit.Sdk.XunitException($"{file} {string.Join(' ', args)} failed: exit {p.ExitCode}: {stderr.Result}");
        return stdout.ToArray();
    }

    public static string Sh(string script) => Check("bash", "-euo", "pipefail", "-c", script);
}

/// <summary>Peer tools the tests need. A missing tool is a failure, never a skip (CI installs them).</summary>
public static class Tools
{
    public static string Require(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var full = System.IO.Path.Join(dir, name);
            if (File.Exists(full)) return full;
        }
        throw new Xunit.Sdk.XunitException($"required peer tool '{name}' is not installed (run .ci/run or install it with apt-get)");
    }
}

/// <summary>
/// Our own CLI, run as a real process so exit codes and stderr are what a user sees: the native
/// executable that `dotnet publish` makes when TREECHUNK_CLI names it (test.sh does, so the
/// tests check what ships), else the test build's treechunk.dll under `dotnet`.
/// </summary>
public static class TreechunkCli
{
    public static readonly string Dll = System.IO.Path.Join(AppContext.BaseDirectory, "treechunk.dll");

    /// <summary>The published executable under test, or null to run <see cref="Dll"/>.</summary>
    public static readonly string? Published = Environment.GetEnvironmentVariable("TREECHUNK_CLI") is { Length: > 0 } cli
        ? (File.Exists(cli) ? cli : throw new InvalidOperationException($"TREECHUNK_CLI={cli} does not exist"))
        : null;

    /// <summary>The program and leading arguments that run the CLI.</summary>
    public static (string File, string[] Prefix) Command => Published != null ? (Published, []) : ("dotnet", [Dll]);

    /// <summary>A shell command line that runs the CLI (for scripts the tests run).</summary>
    public static string ShellCommand => Published != null ? $"'{Published}'" : $"dotnet '{Dll}'";

    public static ProcResult Run(params string[] args) => Proc.Run(Command.File, [.. Command.Prefix, .. args]);

    public static ProcResult RunWithEnv(IDictionary<string, string> env, params string[] args) => Proc.Run(Command.File, [.. Command.Prefix, .. args], env: env);

    public static string Check(params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"treechunk {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }

    public static string Check(IDictionary<string, string> env, params string[] args)
    {
        var r = RunWithEnv(env, args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"treechunk {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }

    /// <summary>Asserts a failure the way the README promises: non-zero exit, one clear line on stderr, no stack trace.</summary>
    public static string Fails(int? exitCode, params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode == 0) throw new Xunit.Sdk.XunitException($"treechunk {string.Join(' ', args)} should have failed: {r}");
        if (exitCode != null && r.ExitCode != exitCode) throw new Xunit.Sdk.XunitException($"expected exit {exitCode}: {r}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:")).ToList();
        if (lines.Count != 1) throw new Xunit.Sdk.XunitException($"expected one line on stderr: {r}");
        if (r.Stderr.Contains("   at ") || r.Stderr.Contains("Exception")) throw new Xunit.Sdk.XunitException($"stack trace or exception name on stderr: {r}");
        return lines[0];
    }
}

/// <summary>Cached fixture trees built by the scripts in tests/fixtures.</summary>
public static class Fixtures
{
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(System.IO.Path.Join(dir.FullName, "Treechunk.slnx"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root");
        }
    }

    private static readonly Lazy<string> DebianTreeLazy = new(() =>
        Proc.Check("bash", System.IO.Path.Join(RepoRoot, "tests/fixtures/debian-tree.sh")).Trim());

    /// <summary>A small real Debian bookworm rootfs (mmdebstrap, cached across runs).</summary>
    public static string DebianTree => DebianTreeLazy.Value;

    private static readonly Lazy<(string V1, string V2)> UpdatePairLazy = new(() =>
    {
        var lines = Proc.Check("bash", System.IO.Path.Join(RepoRoot, "bench/update-pair.sh")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return (lines[0].Trim(), lines[1].Trim());
    });

    /// <summary>
    /// A real Debian update: v1 is bookworm as released (minbase + systemd, bash, openssl, curl,
    /// ca-certificates), v2 the same after a full-upgrade from bookworm-updates and -security
    /// (bench/update-pair.sh; cached across runs, made once with mmdebstrap from the mirror).
    /// </summary>
    public static (string V1, string V2) UpdatePair => UpdatePairLazy.Value;
}
