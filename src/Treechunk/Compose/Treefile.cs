namespace Treechunk.Compose;

public enum RepoKind { Apt, Dnf }

/// <summary>A repository named in a treefile's <c>repos</c>: a file next to the treefile.</summary>
/// <param name="Path">The definition file: NAME.sources (deb822 apt source) or NAME.repo (dnf repo file).</param>
public sealed record RepoDefinition(string Name, string Path, RepoKind Kind);

/// <summary>The treefile's <c>oci:</c> section; command-line flags override it.</summary>
public sealed record OciSection
{
    public string? Tag { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public string? ChunkSize { get; init; }
    public string? ChunkAlgorithm { get; init; }
    public int? MaxLayers { get; init; }
    public string? Compression { get; init; }
    public int? CompressionLevel { get; init; }
}

/// <summary>
/// A parsed treefile (rpm-ostree's keys where they apply), with <c>include</c>s already merged:
/// lists from included files come first, scalars of the including file win.
/// </summary>
public sealed partial record Treefile
{
    /// <summary>Absolute path of the treefile that was loaded (includes are resolved relative to each file).</summary>
    public required string Path { get; init; }
    public string? Ref { get; init; }
    public IReadOnlyList<RepoDefinition> Repos { get; init; } = [];
    public IReadOnlyList<string> Packages { get; init; } = [];
    public IReadOnlyList<string> ExcludePackages { get; init; } = [];
    public string? Releasever { get; init; }
    /// <summary>mmdebstrap variant for the apt backend (minbase when unset); the suite comes from the .sources file.</summary>
    public string? Variant { get; init; }
    public string? AutomaticVersionPrefix { get; init; }
    /// <summary>(source on the host, resolved to an absolute path; destination path in the tree, absolute).</summary>
    public IReadOnlyList<(string Source, string Destination)> AddFiles { get; init; } = [];
    public IReadOnlyList<string> RemoveFiles { get; init; } = [];
    /// <summary>Inline scripts run in the rootfs (each as one `sh -e` script), in order.</summary>
    public IReadOnlyList<string> Postprocess { get; init; } = [];
    public IReadOnlyList<string> Units { get; init; } = [];
    public IReadOnlyList<string>? ContainerCmd { get; init; }
    public OciSection Oci { get; init; } = new();

    /// <summary>The backend the repos select (all repos must agree).</summary>
    public RepoKind? Backend => Repos.Count == 0 ? null : Repos[0].Kind;
}
