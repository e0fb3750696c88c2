using System.Text;
using Treechunk.Trees;

namespace Treechunk.Tests.Support;

/// <summary>A tree held in memory (contents are zeros of each entry's size), for exercising the pipeline stages without a filesystem.</summary>
public sealed class ZeroTree(IEnumerable<TreeEntry> entries) : ITree
{
    private readonly List<TreeEntry> _entries = entries.OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
    public string Description => "memory";
    public IReadOnlyList<TreeEntry> Entries => _entries;
    public Stream OpenContent(TreeEntry entry) => new MemoryStream(new byte[entry.Size]);
    public TreeEntry? Find(string path) => _entries.FirstOrDefault(e => e.Path == path);
    public void Dispose() { }

    public static TreeEntry Dir(string p, int uid = 0) => new() { Path = p, Type = EntryType.Directory, Mode = 0x1ED, Uid = uid };

    public static TreeEntry File(string p, long size, params (string, string)[] xattrs) => new()
    {
        Path = p, Type = EntryType.Regular, Mode = 0x1A4, Size = size,
        Xattrs = xattrs.Select(x => KeyValuePair.Create(x.Item1, Encoding.UTF8.GetBytes(x.Item2))).ToList(),
    };

    public static TreeEntry Hardlink(string p, string target) => new() { Path = p, Type = EntryType.Hardlink, Mode = 0x1A4, LinkTarget = target };
}
