namespace Treechunk.Compose;

public sealed record BackendOptions
{
    /// <summary>Keeps downloaded packages between composes (null: no cache).</summary>
    public string? CacheDir { get; init; }
    /// <summary>The architecture to install for (the backend takes its own name for it); null: the host's.</summary>
    public Oci.CpuArchitecture? Architecture { get; init; }
    /// <summary>Receives the package manager's output line by line (shown with --verbose).</summary>
    public Action<string>? Output { get; init; }
    /// <summary>SOURCE_DATE_EPOCH for the package manager, so what it writes is reproducible.</summary>
    public long SourceDateEpoch { get; init; }
}

public sealed record BackendResult(int PackageCount, int CachedPackages, int DownloadedPackages);

/// <summary>
/// Installs a treefile's packages into an empty root directory with the distribution's own
/// package manager (never a resolver of ours), then removes what must not be in an image
/// (package lists, download caches, logs, machine-id) so the result is reproducible.
/// Failures are TreechunkExceptions whose one-line message carries the package manager's own
/// explanation (e.g. "E: Unable to locate package nosuch").
/// </summary>
public interface IPackageBackend
{
    string Name { get; }
    BackendResult Install(Treefile treefile, string rootfs, BackendOptions options);
}
