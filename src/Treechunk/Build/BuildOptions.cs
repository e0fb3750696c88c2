using Treechunk.Chunking;
using Treechunk.Oci;
using Treechunk.Trees;

namespace Treechunk.Build;

public sealed record BuildOptions
{
    public const int DefaultMaxLayers = 64;
    public const long DefaultChunkSize = 16L << 20;
    /// <summary>Docker's overlay2 refuses images deeper than about 125 layers.</summary>
    public const int DockerLayerLimit = 127;

    public int MaxLayers { get; init; } = DefaultMaxLayers;
    public long ChunkSize { get; init; } = DefaultChunkSize;
    /// <summary>Null: package when the tree has a package database, else content-based.</summary>
    public ChunkAlgorithm? Algorithm { get; init; }
    public Compression Compression { get; init; } = Compression.Gzip;
    public int? CompressionLevel { get; init; }
    public int ParallelLayers { get; init; } = Environment.ProcessorCount;
    /// <summary>zstd worker threads inside one layer; 0 (default) compresses each layer on one thread.</summary>
    public int ParallelChunks { get; init; }
    /// <summary>Where compressed layers are cached between builds (--cache-layers), or null.</summary>
    public string? LayerCacheDir { get; init; }
    public string? Tag { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    /// <summary>The image's architecture; null: the source image's, else the host's.</summary>
    public string? Architecture { get; init; }
    /// <summary>SOURCE_DATE_EPOCH when it was given: clamps every mtime and is the image's created time.</summary>
    public long? SourceDateEpoch { get; init; }
    /// <summary>The epoch in effect: SOURCE_DATE_EPOCH, else 0.</summary>
    public long Epoch => SourceDateEpoch ?? 0;
    /// <summary>The image's created time when it is not <see cref="Epoch"/> (an OSTree commit's timestamp, a source image's created); SOURCE_DATE_EPOCH, when given, wins.</summary>
    public long? Created { get; init; }
    public bool KeepSelinux { get; init; }
    public bool Force { get; init; }
    /// <summary>What history entries say created each layer.</summary>
    public string CreatedBy { get; init; } = "treechunk compose build-chunked-oci";
    /// <summary>Runtime config (Env, Cmd, Healthcheck, ...) carried over from a source image or a treefile.</summary>
    public ContainerConfig? BaseConfig { get; init; }
    /// <summary>The whole config of a source image being rechunked: what it has beyond rootfs and history is kept.</summary>
    public ImageConfig? BaseImageConfig { get; init; }
    /// <summary>The plan of the image this build updates, so unchanged components keep their layers (see ChunkPlanner).</summary>
    public ChunkPlan? PreviousPlan { get; init; }
    /// <summary>A layer appended after the planned ones, outside the plan (e.g. the OSTree commit layer).</summary>
    public FinalLayer? FinalLayer { get; init; }
}

/// <summary>
/// Files written as the image's last layer, kept apart so that changing them (a new commit
/// object) changes nothing else in the image. Parent directories come from
/// <see cref="ParentSource"/> when it has them, else are synthesised (root-owned, 0755).
/// </summary>
public sealed record FinalLayer(ITree Files, string Component, ITree? ParentSource)
{
    /// <summary>A config label that receives this layer's diff_id (ostree-ext's ostree.final-diffid).</summary>
    public string? DiffIdLabel { get; init; }
}

/// <summary>Receives progress from a build; the CLI draws it, tests ignore it.</summary>
public interface IBuildProgress
{
    void Phase(string name);
    void LayersStarted(int count, long totalBytes);
    void LayerDone(int index, long uncompressedBytes);
    void Warning(string message);
}

public sealed class NullProgress : IBuildProgress
{
    public static readonly NullProgress Instance = new();
    public void Phase(string name) { }
    public void LayersStarted(int count, long totalBytes) { }
    public void LayerDone(int index, long uncompressedBytes) { }
    public void Warning(string message) { }
}
