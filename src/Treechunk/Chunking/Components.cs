namespace Treechunk.Chunking;

public enum ChunkAlgorithm { Package, ContentBased, Fixed }

public enum ComponentKind
{
    /// <summary>A source package (dpkg Source:, rpm SOURCERPM).</summary>
    Package,
    /// <summary>Named by a file's user.component xattr.</summary>
    Xattr,
    /// <summary>One file over the size threshold.</summary>
    LargeFile,
    /// <summary>Package databases, caches and other state that changes with every update.</summary>
    State,
    /// <summary>A content-defined run of files no package owns.</summary>
    Unowned,
    /// <summary>A run of paths cut by size alone (content-based and fixed algorithms).</summary>
    Chunk,
}

/// <summary>Which files of a large package a part holds (see <see cref="ComponentAssigner"/>).</summary>
public enum PartKind
{
    /// <summary>Not a part: the whole component.</summary>
    Whole,
    /// <summary>Files every rebuild of the package rewrites: executables, shared objects, modules, manual pages, changelogs.</summary>
    Rebuilt,
    /// <summary>The rest (scripts, modules in source form, data, documentation), which changes only where its upstream does.</summary>
    Data,
}

/// <summary>A set of files that belong together and should share a layer.</summary>
/// <param name="ChangeTimes">Change history (changelog entry times, Unix seconds, newest first); empty when unknown.</param>
public sealed record Component(string Name, ComponentKind Kind, long Size, int FileCount, IReadOnlyList<long> ChangeTimes)
{
    public Component(string name, ComponentKind kind, long size, int fileCount) : this(name, kind, size, fileCount, []) { }

    /// <summary>The component this one is a part of (a large package cut into pieces), or null.</summary>
    public string? Parent { get; init; }

    public PartKind Part { get; init; }

    /// <summary>The whole component: a part's parent, else the component itself.</summary>
    public string WholeName => Parent ?? Name;
}

/// <summary>
/// Every tree entry assigned to exactly one component: <see cref="ComponentOfEntry"/> is
/// aligned with the tree's <see cref="Trees.ITree.Entries"/> (an array, not a map by path, which
/// on a big tree held a path string per entry).
/// </summary>
public sealed record ComponentMap(IReadOnlyList<Component> Components, IReadOnlyList<Trees.TreeEntry> Entries, string[] ComponentOfEntry)
{
    /// <summary>Component by path, made on each call (a path string per entry): for inspecting a small tree, not for builds.</summary>
    public IReadOnlyDictionary<string, string> ComponentOfPath =>
        Entries.Select((e, i) => (e.Path, ComponentOfEntry[i])).ToDictionary(x => x.Path, x => x.Item2, StringComparer.Ordinal);
}

public static class ChunkAlgorithms
{
    public static ChunkAlgorithm Parse(string text) => text.ToLowerInvariant() switch
    {
        "package" => ChunkAlgorithm.Package,
        "content-based" or "content" => ChunkAlgorithm.ContentBased,
        "fixed" => ChunkAlgorithm.Fixed,
        _ => throw new TreechunkException($"unknown chunk algorithm '{text}' (expected package, content-based or fixed)"),
    };

    public static string Name(ChunkAlgorithm a) => a switch
    {
        ChunkAlgorithm.Package => "package",
        ChunkAlgorithm.ContentBased => "content-based",
        _ => "fixed",
    };
}

public static class Sizes
{
    /// <summary>Parses "10M", "512K", "1G", "1.5M", "4096" (bytes); binary units.</summary>
    public static long Parse(string text, string what = "size")
    {
        var t = text.Trim();
        if (t.Length == 0) throw new TreechunkException($"invalid {what} '{text}'");
        long mult = 1;
        var suffix = char.ToUpperInvariant(t[^1]);
        if (t.EndsWith("iB", StringComparison.OrdinalIgnoreCase) || t.EndsWith("B", StringComparison.OrdinalIgnoreCase) && t.Length > 1 && char.IsLetter(t[^2]))
        {
            t = t.EndsWith("iB", StringComparison.OrdinalIgnoreCase) ? t[..^2] : t[..^1];
            suffix = char.ToUpperInvariant(t[^1]);
        }
        switch (suffix)
        {
            case 'K': mult = 1L << 10; t = t[..^1]; break;
            case 'M': mult = 1L << 20; t = t[..^1]; break;
            case 'G': mult = 1L << 30; t = t[..^1]; break;
            case 'T': mult = 1L << 40; t = t[..^1]; break;
        }
        if (!decimal.TryParse(t, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
            throw new TreechunkException($"invalid {what} '{text}' (expected a positive number with an optional K, M or G suffix, e.g. 10M)");
        var bytes = n * mult;
        if (bytes < 4096) throw new TreechunkException($"{what} '{text}' is too small (at least 4K)");
        if (bytes > long.MaxValue / 4) throw new TreechunkException($"{what} '{text}' is too large");
        return (long)bytes;
    }

    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.0} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}
