namespace Treechunk.Trees;

/// <summary>A small tree whose files live in memory (generated files such as an embedded commit object).</summary>
public sealed class MemoryTree : ITree
{
    private readonly List<TreeEntry> _entries;
    private readonly Dictionary<string, byte[]> _content;

    public MemoryTree(IEnumerable<(TreeEntry Entry, byte[]? Content)> items)
    {
        var list = items.ToList();
        _entries = list.Select(i => i.Entry).OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
        _content = list.Where(i => i.Content != null).ToDictionary(i => i.Entry.Path, i => i.Content!, StringComparer.Ordinal);
    }

    public string Description => "generated files";
    public IReadOnlyList<TreeEntry> Entries => _entries;
    public Stream OpenContent(TreeEntry entry) => new MemoryStream(_content[entry.Path], writable: false);
    public TreeEntry? Find(string path) => _entries.FirstOrDefault(e => e.Path == path);
    public void Dispose() { }
}

/// <summary>A view of a tree without some of its entries (e.g. files an exporter injected).</summary>
public sealed class FilteredTree : ITree
{
    private readonly ITree _inner;
    private readonly List<TreeEntry> _entries;
    private readonly PathIndex _byPath;

    public FilteredTree(ITree inner, Func<TreeEntry, bool> keep)
    {
        _inner = inner;
        _entries = inner.Entries.Where(keep).ToList();
        _byPath = new PathIndex(_entries);
    }

    public string Description => _inner.Description;
    public IReadOnlyList<TreeEntry> Entries => _entries;
    public Stream OpenContent(TreeEntry entry) => _inner.OpenContent(entry);
    public TreeEntry? Find(string path) => _byPath.Find(path);
    public TreeEntry? Find(ReadOnlySpan<char> path) => _byPath.Find(path);
    public void Dispose() => _inner.Dispose();
}
