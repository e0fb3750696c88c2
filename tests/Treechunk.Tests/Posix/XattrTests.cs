using Treechunk.Posix;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Posix;

public class XattrTests
{
    /// <summary>
    /// A value is read in one call into a small buffer when it fits and with a sized second call
    /// when not: both sides of that limit, and an absent name, read back exactly.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(255)]
    [InlineData(256)]
    [InlineData(257)]
    [InlineData(3000)]
    public void Values_of_any_size_read_back_exactly(int length)
    {
        using var dir = new TempDir();
        var path = dir["f"];
        File.WriteAllText(path, "x");
        var value = Enumerable.Range(0, length).Select(i => (byte)(i * 7 + 1)).ToArray();
        LibC.SetXattr(path, "user.treechunk.test", value);

        Assert.Equal(value, LibC.GetXattr(path, "user.treechunk.test"));
        Assert.Null(LibC.GetXattr(path, "user.treechunk.absent"));
    }
}
