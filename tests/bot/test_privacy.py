"""Personal data masked before anything is written (bot/privacy.py): a table of cases."""

import pytest

from bot.privacy import MASK, mask

PUBLISHED = ("0763-3375826", "qywgltj@gdqy.gov.cn")


@pytest.mark.parametrize("text, gone, kept", [
    ("我的手机13812345678打不通", ["13812345678"], []),
    ("手机 +86 138-1234-5678", ["138-1234-5678"], []),
    ("座机0763-1234567，急", ["0763-1234567"], []),
    ("打(020)12345678找我", ["12345678"], []),
    ("身份证号44180219900101123X", ["44180219900101123X"], []),
    ("身份证441802199001011234号", ["441802199001011234"], []),
    ("银行卡6222021234567890123丢了", ["6222021234567890123"], []),
    ("发到zhang.san@qq.com", ["zhang.san@qq.com"], []),
    ("我的车粤R12345被贴了罚单", ["粤R12345"], []),
    ("新能源车牌粤RD12345", ["粤RD12345"], []),
    ("我叫王小明，想问应急广播", ["王小明"], ["想问应急广播"]),
    ("我的名字是李四 住在连南", ["李四"], ["住在连南"]),
    # the notice's own published channels are no one's personal data
    ("0763-3375826是你们的电话吗", [], ["0763-3375826"]),
    ("qywgltj@gdqy.gov.cn能收附件吗", [], ["qywgltj@gdqy.gov.cn"]),
    # numbers that are not personal stay
    ("2024年建了368座旅游厕所", [], ["2024年", "368座"]),
    ("第16条讲了什么", [], ["第16条"]),
])
def test_masking(text, gone, kept):
    out = mask(text, PUBLISHED)
    for secret in gone:
        assert secret not in out
    for part in kept:
        assert part in out
    assert (MASK in out) is bool(gone)
