using System.Text.Json.Nodes;

namespace Treechunk.Tests.Support;

/// <summary>
/// A podman storage of the test's own (<c>--root</c>, <c>--runroot</c> in a scratch directory,
/// vfs), so what a test loads is all that podman lists there and the machine's own images are
/// never touched. podman load and images work as root here; podman run does not (DESIGN.md §6).
///
/// libpod's runtime state (tmp_dir: the alive file, locks, events) is private too, through a
/// containers.conf of its own: by default every root podman shares /run/libpod, and a
/// `podman system reset` anywhere removes it under the feet of a podman running in parallel
/// ("creating runtime status file: open /run/libpod/alive: no such file or directory").
/// </summary>
public sealed class PodmanStore : IDisposable
{
    private readonly TempDir _dir = new("podman-");

    public PodmanStore()
    {
        File.WriteAllText(ConfigFile, $"[engine]\ntmp_dir = \"{_dir["libpod"]}\"\n");
    }

    public string Root => _dir["root"];
    public string RunRoot => _dir["runroot"];
    private string ConfigFile => _dir["containers.conf"];

    /// <summary>podman's global flags that select this storage; treechunk's import-podman takes the same.</summary>
    public string[] Flags => ["--root", Root, "--runroot", RunRoot, "--storage-driver", "vfs"];

    /// <summary>The environment podman (and treechunk, which passes it on to podman) must run with: this store's containers.conf only.</summary>
    public Dictionary<string, string> Env => new() { ["CONTAINERS_CONF"] = ConfigFile };

    public ProcResult Run(params string[] args) =>
        Proc.Run(Tools.Require("podman"), [.. Flags, .. args], env: Env, timeout: TimeSpan.FromMinutes(3));

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
