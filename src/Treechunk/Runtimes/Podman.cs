using System.ComponentModel;
using System.Diagnostics;
using Treechunk.IO;

namespace Treechunk.Runtimes;

/// <summary>What an engine said it loaded.</summary>
public sealed record EngineLoadResult(IReadOnlyList<string> Loaded, string Output);

/// <summary>podman's global flags that pick the storage (<c>podman --root R --runroot RR --storage-driver D</c>).</summary>
public sealed record PodmanOptions(string? Root = null, string? RunRoot = null, string? StorageDriver = null)
{
    public IEnumerable<string> GlobalFlags()
    {
        if (Root != null) { yield return "--root"; yield return Root; }
        if (RunRoot != null) { yield return "--runroot"; yield return RunRoot; }
        if (StorageDriver != null) { yield return "--storage-driver"; yield return StorageDriver; }
    }
}

/// <summary>
/// <c>podman load</c> fed on stdin: the archive streams straight into podman (which keeps it in a
/// temp file of its own, then reads the OCI view or the docker-archive view).
/// </summary>
public static class Podman
{
    /// <summary>The podman on PATH, or a one-line error saying how to get one.</summary>
    public static string Locate() =>
        ProcessRunner.FindOnPath("podman")
        ?? throw new TreechunkException("podman is not installed (no podman on PATH; install it with: apt-get install podman)", ExitCodes.EnvironmentError);

    /// <summary>Runs <c>podman [global flags] load</c> and writes the archive to its stdin with <paramref name="write"/>.</summary>
    public static EngineLoadResult Load(string podman, PodmanOptions options, Action<Stream> write, Action<string>? log = null)
    {
        var psi = new ProcessStartInfo(podman)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in options.GlobalFlags()) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("load");
        psi.Environment["LC_ALL"] = "C.UTF-8";
        log?.Invoke($"running {podman} {string.Join(' ', psi.ArgumentList)}");
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new TreechunkException($"cannot start {podman}", ExitCodes.EnvironmentError);
        }
        catch (Win32Exception e)
        {
            throw new TreechunkException($"cannot run {podman}: {e.Message} (install it with: apt-get install podman)", ExitCodes.EnvironmentError);
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            Exception? writeError = null;
            var stdin = new PipeInput(p.StandardInput.BaseStream);
            try
            {
                using (stdin) write(stdin);
            }
            catch (IOException e) when (stdin.Broken)
            {
                // podman stopped reading (it failed): what it says is the real story.
                writeError = e;
            }
            catch
            {
                // Our side failed (a corrupt blob, an unreadable file): podman has a cut archive and
                // must not run on after the error is reported.
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit();
                throw;
            }
            p.WaitForExit();
            var output = stdout.Result + stderr.Result;
            if (p.ExitCode != 0 || writeError != null)
            {
                var last = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim();
                throw new TreechunkException($"podman load failed (exit {p.ExitCode}): {last ?? writeError?.Message ?? "no message"}", ExitCodes.EnvironmentError, writeError);
            }
            var loaded = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Where(l => l.StartsWith("Loaded image", StringComparison.Ordinal))
                .SelectMany(l => l[(l.IndexOf(':') + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .ToList();
            return new EngineLoadResult(loaded, output.Trim());
        }
    }
}

/// <summary>podman's stdin: remembers whether a write to the pipe failed, which means podman stopped reading.</summary>
internal sealed class PipeInput(Stream pipe) : WriteOnlyStream
{
    public bool Broken { get; private set; }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try
        {
            pipe.Write(buffer);
        }
        catch (IOException)
        {
            Broken = true;
            throw;
        }
    }

    public override void Flush()
    {
        try
        {
            pipe.Flush();
        }
        catch (IOException)
        {
            Broken = true;
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                pipe.Dispose();
            }
            catch (IOException)
            {
                Broken = true;
                throw;
            }
        }
        base.Dispose(disposing);
    }
}
