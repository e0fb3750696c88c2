using System.Diagnostics;
using Treechunk.Build;
using Treechunk.Layers;
using Treechunk.Oci;

namespace Treechunk.Encapsulation;

/// <summary>
/// Rechunking an image (<c>build-chunked-oci --from</c>): its layers are flattened into one tree
/// and planned again. The result is the same image in different layers: its config is the base
/// (Env, Cmd, Healthcheck, labels and members we do not model; only rootfs and history are new),
/// its architecture and created time stay unless the options say otherwise, and an OSTree commit
/// it carries (container-encapsulate) travels on in the last layer, so it still imports to the
/// same commit. This lives beside encapsulation because that last rule is encapsulation's.
/// </summary>
public static class ImageRechunk
{
    public static BuildResult Rechunk(Image source, IImageDestination destination, BuildOptions options, IBuildProgress? progress = null, Action<string>? warn = null)
    {
        progress ??= NullProgress.Instance;
        var clock = Stopwatch.StartNew();
        progress.Phase($"Flattening {source.Layers.Count} layers");
        using var flattened = FlattenedImageTree.Open(source, warn);
        var scan = clock.Elapsed.TotalSeconds;
        options = options with
        {
            BaseConfig = source.Config.Config,
            BaseImageConfig = source.Config,
            Architecture = options.Architecture ?? source.Config.Architecture,
            Created = options.Created ?? (DateTimeOffset.TryParse(source.Config.Created, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal, out var created) ? Math.Max(0, created.ToUnixTimeSeconds()) : null),
        };
        var tree = (Trees.ITree)flattened;
        if (OstreeImageImport.FindEmbeddedCommit(source, flattened) is { } embedded)
        {
            tree = embedded.Tree;
            options = options with { FinalLayer = embedded.ToFinalLayer(), KeepSelinux = true };
        }
        var result = ChunkedImageBuilder.Build(tree, destination, options, progress);
        result.Metrics.ScanSeconds = scan;
        return result;
    }
}
