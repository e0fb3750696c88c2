using System.Text.Json.Nodes;

namespace Treechunk.Tests.Support;

/// <summary>
/// A podman storage of the test's own (<c>--root</c>, <c>--runroot</c> in a scratch directory,
/// vfs), so what a test loads is all that podman lists there and the machine's own images are
/// never touched. podman load and images work as root here; podman run does not (DESIGN.md §6).
/// </summary>
public sealed class PodmanStore : IDisposable
{
    private readonly TempDir _dir = new("podman-");

    public string Root => _dir["root"];
    public string RunRoot => _dir["runroot"];

    /// <summary>podman's global flags that select this storage; treechunk's import-podman takes the same.</summary>
    public string[] Flags => ["--root", Root, "--runroot", RunRoot, "--storage-driver", "vfs"];

    public ProcResult Run(params string[] args) =>
        Proc.Run(Tools.Require("podman"), [.. Flags, .. args], timeout: TimeSpan.FromMinutes(3));

    public string Check(params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"podman {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }

    /// <summary>Every REPOSITORY:TAG podman lists in this storage.</summary>
    public List<string> Names() =>
        [.. Check("images", "--format", "{{.Repository}}:{{.Tag}}").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>podman image inspect of one image (the first and only object of its array).</summary>
    public JsonNode Inspect(string name) => JsonNode.Parse(Check("image", "inspect", name))!.AsArray().Single()!;

    public void Dispose() => _dir.Dispose();
}
