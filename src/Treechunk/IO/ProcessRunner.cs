using System.ComponentModel;
using System.Diagnostics;

namespace Treechunk.IO;

/// <summary>
/// Runs an external program (a package manager, a chroot'ed script): stdin at end-of-file so it
/// never waits for a user, both output streams read line by line as they come (streamed to a
/// callback and kept for error messages), a C.UTF-8 locale so messages can be matched and do
/// not leak the host's language into the tree.
/// </summary>
public static class ProcessRunner
{
    public sealed record Result(int ExitCode, IReadOnlyList<string> Lines, IReadOnlyList<string> ErrorLines)
    {
        /// <summary>What the program wrote to stdout, line by line.</summary>
        public IReadOnlyList<string> OutputLines { get; init; } = [];

        /// <summary>The last non-empty line the program wrote to stderr, for a one-line error.</summary>
        public string LastError => ErrorLines.LastOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "(no output on stderr)";
    }

    /// <param name="env">Variables to set; a null value removes the variable.</param>
    /// <param name="installHint">Appended when the program cannot be started, e.g. "install it with: apt-get install dnf".</param>
    /// <summary>The first file named <paramref name="tool"/> in a PATH directory, or null.</summary>
    public static string? FindOnPath(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var full = Path.Join(dir, tool);
            if (File.Exists(full)) return full;
        }
        return null;
    }

    public static Result Run(string tool, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null,
        Action<string>? output = null, string? installHint = null) => Run(tool, args, env, output, installHint, stdin: null);

    /// <summary>Runs with <paramref name="stdin"/> as the program's input (a credential helper's question).</summary>
    public static Result RunWithInput(string tool, IEnumerable<string> args, string stdin, string? installHint = null) =>
        Run(tool, args, null, null, installHint, stdin);

    private static Result Run(string tool, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env,
        Action<string>? output, string? installHint, string? stdin)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C.UTF-8";
        psi.Environment.Remove("LANGUAGE");
        foreach (var (k, v) in env ?? new Dictionary<string, string?>())
        {
            if (v == null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }

        var lines = new List<string>();
        var errors = new List<string>();
        var outputs = new List<string>();
        void OnLine(string? line, bool isError)
        {
            if (line == null) return;
            // Both streams arrive on pool threads; one lock keeps their lines whole and in one order.
            lock (lines)
            {
                lines.Add(line);
                (isError ? errors : outputs).Add(line);
                output?.Invoke(line);
            }
        }

        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new TreechunkException($"cannot start {tool}", ExitCodes.EnvironmentError);
        }
        catch (Win32Exception e)
        {
            throw new TreechunkException($"cannot run {tool}: {e.Message}{(installHint != null ? $" ({installHint})" : "")}", ExitCodes.EnvironmentError);
        }
        using (p)
        {
            p.OutputDataReceived += (_, e) => OnLine(e.Data, false);
            p.ErrorDataReceived += (_, e) => OnLine(e.Data, true);
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            if (stdin != null) p.StandardInput.Write(stdin);
            p.StandardInput.Close();
            // The parameterless wait also waits for both streams to be read to the end.
            p.WaitForExit();
            lock (lines) return new Result(p.ExitCode, lines.ToList(), errors.ToList()) { OutputLines = outputs.ToList() };
        }
    }

    /// <summary>Joins message parts into the one line an error carries.</summary>
    public static string OneLine(IEnumerable<string> parts) =>
        string.Join("; ", parts.Select(p => string.Join(' ', p.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)))
            .Where(p => p.Length > 0).Distinct());
}
