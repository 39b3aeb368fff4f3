"""The abstention signals: what kind of fact a question asks for, names, the fields' vocabularies (pure
logic, no model); then the real bot over three notices of three fields, declining and answering."""

from pathlib import Path

import pytest

from bot.scope import (_ASKS_NAME_RE, abbreviates, knows, _service, ask_subject, foreign_names, foreign_ordinals,
                       main_clause, scope_vocabulary, type_unmet)
from index.text import words
from knowledge.fields import field_vocabulary

# The seed notice's field (its notice.yml: field: culture-tourism-sports), as the library reads it.
SEED_FIELD = scope_vocabulary(field_vocabulary(["culture-tourism-sports"]))


@pytest.mark.parametrize(
    "question, passage, unmet",
    [
        ("旅游厕所建了多少座", "全市建成旅游集散中心8个，旅游咨询服务点63个，旅游厕所368座。", False),
        ("旅游厕所有多少个", "旅游厕所368座", False),  # 个 is answered by any measure word
        ("建了多少个旅游厕所", "一是加快旅游厕所建设", True),  # 一是 enumerates, it counts nothing
        ("多少人完成了岗位晋升", "完成直属单位31名干部的岗位晋升程序", False),  # 人 ~ 名
        ("运动会拿了几枚金牌", "组织参加全国少数民族传统体育运动会取得了优异成绩", True),
        ("省里给了多少钱", "争取到2025年广东省老少边及欠发达地区县级应急广播系统建设资金", True),
        ("拨了多少钱", "下达资金100万元", False),
        ("基层受测人员比例是多少", "社区、农村等基层受测人员达到50%以上", False),
        ("会费是工资的百分之几", "明确会费缴纳比例", True),
        ("新馆什么时候开放", "2025年8月实现新馆局部开放", False),
        ("健身中心什么时候建成", "加强对连南全民健身中心建设工作的指导", True),
        ("保护规划管的是从哪年到哪年", "完成《青塘遗址保护规划（2021-2035）》", False),
        ("应急广播建设进展如何", "市级应急广播系统已完成建设", False),  # asks for no kind of fact
        ("护照要在几天内交回", "做好证件领取、回收工作", True),
        ("联系电话是多少", "联系电话：0763-3375826；", False),
        ("展馆的预约电话是多少", "做好预约团体讲解服务", True),
        ("干部还能用私人邮箱吗", "对不必要使用的个人电子邮箱进行注销", False),  # not asking for an address
        ("邮箱是多少", "电子邮箱：qywgltj@gdqy.gov.cn。", False),
        ("旅游集散中心都在什么地方", "全市建成旅游集散中心8个", True),
        ("意见寄到什么地方", "邮政信箱地址：清远市新城银泉路图书馆大楼六楼", False),
        ("会费花在哪了", "及时公开会费及工会经费使用情况", False),  # where money went, not a place
        ("演唱会主办方要提前多久交售票信息", "须在开演前七天提供票务销售信息", False),  # a duration
        ("一共投入了多少资金", "争取到建设资金", True),
        ("建了多少座公厕", "全市建成旅游集散中心8个，旅游厕所368座。", False),
        # a number of the right measure, but in a sentence about something else
        ("引进的高素质人才一共有多少名", "完成直属单位31名干部的岗位晋升程序。四是引进高素质人才", True),
        # a count with no measure word (多少游客), and a number inside a plan's title counts nothing
        ("去年一共接待了多少游客", "为游客提供高质量服务。二是做好交通服务保障", True),
        ("补短板计划要建多少个场地", "加大对《全民健身场地设施补短板五年行动计划》的督促力度", True),
        ("省级资金是多少万元", "争取省级资金支持县级应急广播建设", True),
        ("旅游收入是多少", "大力推进全域旅游建设，丰富旅游供给", True),  # a figure, none stated
        ("邮编是多少", "邮政编码：511518；", False),
        # a share talked about, not asked for
        ("会费缴纳比例依据的是哪份规定", "明确会费缴纳比例", False),
        ("基层受测人员要占多大比例", "社区、农村等基层受测人员达到50%以上", False),
        # a place in a sentence about the subject, not anywhere in the passage
        ("健身中心建在哪里", "落实《清远市全民健身计划》。加强对全民健身中心建设工作的指导。", True),
        ("考古工作站设在哪里", "与广东省文物考古研究院共建英德市青塘考古工作站。", False),
        ("最晚要在哪天之前提意见", "公开期限：2025年10月16日至11月16日。", False),  # 在哪天 asks when
        # which place or organisation: named, not only counted
        ("入选重点村的是哪个村", "培育打造全国乡村旅游重点村1个，广东省文化和旅游特色村20个。", True),
        ("有哪几个镇评上了特色镇", "清新区太和镇、佛冈县汤塘镇被认定为广东省文化和旅游特色镇。", False),
        ("示范基地是哪家企业", "培育打造国家工业旅游示范基地1个。", True),
        ("考古工作站是跟哪家单位合作的", "与广东省文物考古研究院合作共建考古工作站。", False),
        ("巡察整改由哪个单位负责", "成立由局党组主要负责同志任组长的整改工作领导小组。", False),
        ("巡察组在局里待了多少天", "2024年3月29日至6月28日，市委第四巡察组开展了巡察。", False),  # a span
        ("集散中心有几家", "全市建成旅游集散中心8个。", False),  # 几家 ~ 8个
        ("体育场馆建设在推进吗", "加强与市体育场馆管理中心的沟通。", False),  # 建设在 is no 在哪
        ("几万个旅游厕所建好了吗", "旅游厕所368座。", False),  # a count, not money (and yes/no)
        ("旅游厕所有多少个", "坚决做到“两个维护”。", True),  # a slogan counts nothing
        ("青塘遗址距今有多少年", "2024年完成青塘遗址考古工作站建设。", True),  # a year is no age
        ("第四次文物普查发现了多少处文物", "开展第四次全国文物普查工作。", True),  # 第四次 counts nothing
        ("图书馆党支部被命名为第几批四强党支部", "获命名第二批“四强”党支部。", False),
        ("旅游厕所一年的维护费用是多少", "全市建成旅游厕所368座。", True),  # money, not a count
        ("干部名单在哪能查到", "完成直属单位31名干部的岗位晋升程序。", True),  # 在哪能 asks where
        ("哪个景区出过安全事故", "全市旅游景区开展安全检查。", True),  # 全市 names no 景区
        ("工会活动经费花多少是怎么定的", "科学编制工会经费预算。", False),  # how it is set
        ("社会监督员制度是在哪个监管体系中首创的", "构建“三维联动”监管体系，首创“社会监督员”制度。", False),
        ("交流集训是在哪项工作中开展的", "开展清远澳门青年运动员交流集训活动。", False),
        ("保密这事党组多久研究一次", "将保密工作纳入党组议事日程，定期研究部署我局保密工作。", False),  # 定期
        ("试点拿到了多少补助", "连州市入选首批文化产业赋能乡村振兴省级试点。", True),
        ("演艺剧场是哪所院校参与共建的", "推动演艺剧场建设。", True),
        ("20个省级文旅特色村具体是哪些村", "广东省文化和旅游特色村20个。", True),
        ("保密这事你们党组多久研究一回", "定期研究部署我局保密工作。", False),
        ("非遗展馆在哪条路上", "做好非遗展馆预约团体讲解服务。", True),
        # which ones, of any kind: named (quoted, listed), or only counted
        ("是哪几家单位", "全年共有3家单位获评先进集体。", True),
        ("示范点分别是哪些", "建成示范点12个，带动周边发展。", True),
        ("哪些项目获评了", "“山水画廊”“古道新生”两个项目获评优秀案例。", False),
        ("是哪几个协会", "组织书法协会、摄影协会等4个协会开展活动。", False),
        ("哪个小组负责", "成立专项工作小组，统筹推进。", False),  # not counted: the search decides
        ("哪一年开始的", "2023年共有3家单位开始试点。", False),  # a time, not a which-one
        # a web address or an account: only a passage that gives one
        ("先行赔付平台的网址是多少", "搭建旅游投诉先行赔付平台，及时化解旅游纠纷。", True),
        ("公众号叫什么", "依托“河西健康”微信公众号提供挂号、缴费等线上服务。", False),
        ("网站是哪个", "登录www.example.gov.cn查询。", False),
        # where the money comes from: only a passage that speaks of money answers it
        ("钱从哪里来", "加强对全民健身中心建设工作的指导，建立督办机制。", True),
        ("建设资金从哪来的", "争取到省级专项建设资金开展平台建设。", False),
        ("经费来源是什么", "严格按标准使用工会经费。", False),
    ],
)
def test_type_unmet(question, passage, unmet):
    assert type_unmet(question, passage, ask_subject(question, {"公厕": ["旅游厕所"], "邮编": ["邮政编码"]}),
                      vocabulary=SEED_FIELD) is unmet


@pytest.mark.parametrize(
    "question, asks",
    [("局长叫什么名字", True), ("厅长是谁？", True), ("巡察组有哪些成员", True),
     ("旅游景区的安全谁来管", False), ("是谁亲自挂帅负总责", False), ("晚上开会协调的机制叫什么来着", False),
     ("被批评的那几个人叫什么名字", True), ("会风会纪问题处分了哪个干部", True),
     ("晋升的31名干部名单在哪能查到", True), ("那20个村分别叫什么", True),
     ("这条线路入选了什么名单", False), ("哪个领导负责", False)],
)
def test_asks_name(question, asks):
    assert bool(_ASKS_NAME_RE.search(question)) is asks


def test_foreign_names_are_names_the_notice_lacks():
    vocabulary = "清远市文化广电旅游体育局……连南应急广播系统……"
    synonyms = {"旅体局": ["文化广电旅游体育局"]}  # the bureau's short name, from synonyms.yml
    assert foreign_names("韶关市文广旅体局的通报", vocabulary, synonyms) == ["韶关市"]
    assert foreign_names("清远市文广旅体局的通报", vocabulary, synonyms) == []
    assert foreign_names("清远市的应急广播", vocabulary, {}) == []
    assert foreign_names("刮台风发洪水时村里响的大喇叭", vocabulary, {}) == []  # not names
    assert foreign_names("大埔县的旅游怎么样", vocabulary, {}) == ["大埔县"]  # 大… can be a name
    assert foreign_names("想打造成旅游大城市", vocabulary, {}) == []  # …or just big
    # jieba cuts 卫生/健康/局 and 文化/和/旅游/厅: the whole is the name, the level (市) is not
    assert foreign_names("清远市卫生健康局的电话", vocabulary, {}) == ["卫生健康局"]
    assert foreign_names("广东省文化和旅游厅的检查结果", "广东省", {}) == ["文化和旅游厅"]
    assert foreign_names("市文广旅体局做了哪些整改", vocabulary, synonyms | {"文广旅体局": ["文化广电旅游体育局"]}) == []
    assert foreign_names("节目出岔子怎么办", vocabulary, {}) == []  # 怎么办 is no office
    # a short form of the issuer's name is no other office; an office that shares words with it is
    own = ("中共清远市文化广电旅游体育局党组",)
    assert foreign_names("市文旅体局做了哪些整改", vocabulary, {}, own) == []
    assert foreign_names("文广局的电话是多少", vocabulary, {}, own) == []
    assert abbreviates("文体旅局", own[0]) and not abbreviates("教育局", own[0])  # in any order
    assert foreign_names("市教育局做了哪些整改", vocabulary, {}, own) == ["教育局"]
    assert foreign_names("清远市应急管理局的电话是多少", vocabulary, {}, own) == ["管理局"]  # jieba: 应急/管理局
    assert foreign_names("财政局和卫生健康局", vocabulary, {}, own) == ["财政局", "卫生健康局"]
    assert foreign_names("游泳馆建设有进展吗", vocabulary, {}, own) == []  # a venue, not an office
    # a county of ours, but its own office: jieba cuts 英德市/文广/旅体局
    assert foreign_names("英德市文广旅体局的整改情况怎么样", vocabulary + "英德市", {}, own) == ["英德市文广旅体局"]


@pytest.mark.parametrize(
    "question, count",
    [("八届市委第六轮巡察什么时候开始", 1), ("第八届市委第五轮巡察整改情况", 0), ("第5轮巡察整改进展", 0),
     ("学习党的第二十届三中全会精神", 0), ("2021-2035年青塘遗址保护规划完成了吗", 0), ("2021年那次巡察", 1),
     ("1949年以前的革命文物", 0), ("2023年的整改", 1), ("上一轮巡察发现了什么问题", 1),
     ("下一次巡察什么时候来", 1), ("下一步有什么打算", 0), ("市委第五巡察组巡察了哪些单位", 1),
     ("市委第四巡察组是哪天来的", 0), ("市委其他巡察组这轮巡察了哪些单位", 1)],
)
def test_foreign_ordinals_read_numbers_as_the_notice_writes_them(question, count):
    vocabulary = "八届市委第五轮巡察……市委第四巡察组……党的二十届三中全会……《青塘遗址保护规划（2021-2035）》……2024年……下一步工作"
    assert foreign_ordinals(question, vocabulary) == count


@pytest.mark.parametrize(
    "question, clause",
    [("图书馆关门又早，有没有改进？", "有没有改进"), ("应急广播建设进展如何", "应急广播建设进展如何"),
     ("旅游厕所建了多少座，谢谢", "旅游厕所建了多少座"), ("局长，是谁？", "是谁")],
)
def test_the_ask_is_the_last_clause(question, clause):
    assert main_clause(question) == clause


@pytest.mark.parametrize(
    "question, passage, service",
    [
        ("去非遗展馆参观能预约讲解吗", "改善服务质量，做好预约团体讲解服务。", False),  # the passage's own subject
        ("孩子上小学，学位怎么申请", "严格审核领导干部申请因私出国（境）条件。", True),  # 申请, but not for this
        ("博物馆几点开门", "推进市图书馆、博物馆新馆进驻工作。", True),
        ("应急广播建设进展如何", "市级应急广播系统已完成建设。", False),
        ("换证要带什么材料", "严格证照管理。", True),
        ("干部能用私人邮箱收发工作材料吗", "使用党政机关政务电子邮箱。", False),  # no service asked
        ("下班后想去图书馆，能不能开晚一点", "推进市图书馆新馆延长开放时间。", False),
        ("新生儿怎么办理落户", "推进市图书馆新馆进驻工作。", True),
        ("节目播出出岔子怎么办", "健全安全播出工作机制。", False),  # what is done, not a procedure
        ("体质监测站测一次要不要钱", "开展国民体质监测工作。", True),
        ("游客被宰客了怎么办呀", "建立投诉-核查-反馈闭环处理机制。", False),  # 怎么办 + particle
    ],
)
def test_service_cues(question, passage, service):
    assert _service(question, passage, ask_subject(question, {}), vocabulary=SEED_FIELD) is service


def test_a_word_jieba_glued_a_character_onto_is_known():
    vocabulary = "佛冈县汤塘镇被认定为广东省文化和旅游特色镇"
    assert words("汤塘评了啥") == ["汤塘评"]  # jieba's new-word guess
    assert knows("汤塘评", vocabulary, {}) and not knows("岩山寨", vocabulary, {})


def test_a_notice_with_no_labelled_questions_is_judged_by_the_model_learnt_without_them():
    import numpy as np

    from bot.scope import FEATURES, fit

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 40)
    X = rng.normal(size=(80, len(FEATURES)))
    column = FEATURES.index("labelled_margin")
    X[:, column] = y * 2.0 - 1.0 + rng.normal(scale=0.1, size=80)  # the labelled signal separates them
    model = fit(X, y, 0.5, "test-model", {})
    assert model.unlabelled is not None
    row = X[1].copy()
    row[column] = np.nan  # no labelled questions for this notice
    p = model.probability(row)
    assert 0.0 < p < 1.0 and p == model.unlabelled.probability(row)
    # the full model leans on the labelled signal; the unlabelled one gives it no weight
    assert abs(model.unlabelled.weights[column]) < 1e-9 < abs(model.weights[column])
    # and it survives the JSON round trip (a constant column's scale is 1, never 0)
    from bot.scope import ScopeModel

    again = ScopeModel.from_json(model.to_json())
    assert again.probability(row) == pytest.approx(p, abs=1e-4)


# ---- the fields' vocabularies, on the real bot over three notices of three fields -----------------

HEALTH_FIELD = scope_vocabulary(field_vocabulary(["health"]))
COMMON_ONLY = scope_vocabulary(None)
# 第6条 of the health notice (tests/data/library/hexi-wjj-xuncha-2025): bookings and payments, no reimbursement.
HEALTH_ITEM_6 = ("推动市属5家公立医院全面开展分时段预约诊疗；推行诊间结算、床旁结算；依托“河西健康”微信公众号提供"
                 "挂号、缴费、查询检查报告等8项线上服务。")


@pytest.mark.parametrize(
    "question, field, service",
    [("医保怎么报销", HEALTH_FIELD, True), ("医保怎么报销", SEED_FIELD, False), ("医保怎么报销", COMMON_ONLY, False),
     ("景区门票多少钱", SEED_FIELD, True), ("景区门票贵不贵", HEALTH_FIELD, False),
     ("身份证丢了怎么补办", COMMON_ONLY, True),  # common to every field
     ("在公众号上能挂号吗", HEALTH_FIELD, False)],  # the passage speaks of 挂号 itself
)
def test_a_service_is_one_of_the_fields_of_the_library(question, field, service):
    assert _service(question, HEALTH_ITEM_6, ask_subject(question, {}), vocabulary=field) is service


def test_which_one_of_a_fields_kind_of_organisation_must_be_named():
    counted, named = "对全市38家二级以上医疗机构开展全覆盖检查。", "在东坪县人民医院、南溪区人民医院设立综合服务中心。"
    assert type_unmet("是哪几家医院", counted, vocabulary=HEALTH_FIELD)
    assert not type_unmet("是哪几家医院", named, vocabulary=HEALTH_FIELD)
    assert type_unmet("哪个景区出过安全事故", "全市旅游景区开展安全检查。", vocabulary=SEED_FIELD)
    assert not type_unmet("哪个景区出过安全事故", "全市旅游景区开展安全检查。", vocabulary=HEALTH_FIELD)


def test_the_compiled_vocabulary_is_made_once_for_each_vocabulary():
    assert scope_vocabulary(field_vocabulary(["health"])) is HEALTH_FIELD


SEED_DOC, HEXI, NANSHAN = "qingyuan-wlj-xuncha-2025", "hexi-wjj-xuncha-2025", "nanshan-jtj-xuncha-2024"


@pytest.fixture(scope="module")
def three(bot, index_dir, tmp_path_factory):
    """The bot over the seed and the health and transport notices (tests/data/library/, no labelled
    questions of their own), on the session's model; its index starts from the session's, so only
    the two notices' passages are embedded."""
    import shutil

    from bot.runtime import build_bot
    from knowledge.store import NOTICES_DIR

    root = tmp_path_factory.mktemp("three-fields")
    shutil.copytree(NOTICES_DIR / SEED_DOC, root / "notices" / SEED_DOC)
    for doc in (HEXI, NANSHAN):
        shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "library" / doc, root / "notices" / doc)
    shutil.copytree(index_dir, root / "index")
    built = build_bot({"LIBRARY_DIR": str(root / "notices"), "INDEX_DIR": str(root / "index")}, embedder=bot.embedder)
    built.warm_up()
    return built


def _declined(bot, question: str, doc: str | None) -> bool:
    return bot.answerer.answer(question, page=doc).abstained


@pytest.mark.parametrize(
    "question, doc",
    [("医保怎么报销", HEXI), ("在哪里可以打疫苗", HEXI), ("体检要多少钱", HEXI), ("身份证怎么补办", HEXI),
     ("明天天气怎么样", HEXI), ("违章罚单怎么交", NANSHAN), ("汽车年检要带什么材料", NANSHAN), ("明天天气怎么样", NANSHAN)],
)
def test_a_notice_with_no_labelled_questions_declines_what_it_does_not_answer(three, question, doc):
    assert not three.retriever.library.questions.get(doc)
    assert _declined(three, question, doc)


@pytest.mark.parametrize(
    "question, doc, anchor",
    [("挂号难的问题整改了吗", HEXI, "item-6"), ("检查检验结果互认扩大到多少项", HEXI, "item-5"),
     ("医药代表怎么接待", HEXI, "item-4")],
)
def test_a_notice_with_no_labelled_questions_still_answers_from_its_items(three, question, doc, anchor):
    answer = three.answerer.answer(question, page=doc)
    assert not answer.abstained and (answer.citations[0].doc, answer.citations[0].anchor) == (doc, anchor)


SEED_OUT_OF_SCOPE = ["门票多少钱", "青塘遗址门票多少钱", "博物馆几点开门", "演唱会门票怎么退", "图书馆办证要带什么材料",
                     "驾照怎么换"]


@pytest.mark.parametrize(
    "question, doc",
    [(q, None) for q in SEED_OUT_OF_SCOPE] + [(q, SEED_DOC) for q in SEED_OUT_OF_SCOPE]
    # another field's service, on the seed's page (with no page, the health notice's 第6条 on
    # booking through its WeChat account answers it)
    + [("市人民医院怎么挂号", SEED_DOC)],
)
def test_the_seeds_out_of_scope_questions_are_declined_with_the_other_notices_loaded(three, bot, question, doc):
    assert _declined(bot, question, None)  # the seed alone
    assert _declined(three, question, doc)


def test_the_weights_say_which_notices_they_were_learnt_on():
    """Pure: what changed in the library since the scope weights were learnt."""
    from types import SimpleNamespace

    from bot.scope import changes_since, learnt_on

    seed_only = SimpleNamespace(notices={"a": 1}, questions={"a": [1, 2, 3]})
    three = SimpleNamespace(notices={"a": 1, "b": 2, "c": 3}, questions={"a": [1, 2, 3, 4]})
    assert learnt_on(seed_only) == {"a": 3}
    assert changes_since({"notices": {"a": 3}}, seed_only) == {"current": True, "added": [], "removed": [], "labels": {}}
    assert changes_since({"notices": {"a": 3}}, three) == {"current": False, "added": ["b", "c"], "removed": [],
                                                           "labels": {"a": [3, 4]}}
    assert changes_since({"notices": {"a": 3, "z": 9}}, seed_only)["removed"] == ["z"]
    assert changes_since({}, seed_only) == {"current": False, "unknown": True, "notices": {"a": 3}}


@pytest.mark.parametrize("passage, unmet", [
    # counted, and a 、 elsewhere joins two actions: the units are named nowhere
    ("研究将9个直属事业单位打破边界统筹配备。完成直属单位干部晋升，解决、盘活直属单位的聘岗问题。", True),
    # counted and listed: named
    ("清城区东城街道、清城区石角镇等9个直属事业单位完成改革。", False),
    ("“百味鸡宴”、“英石文化”等9个直属事业单位完成改革。", False),
])
def test_which_of_a_counted_kind_is_unmet_unless_the_passage_lists_them(passage, unmet):
    """Pure: 哪9个 asks which ones; a passage that counts them names them only in a list of things."""
    assert type_unmet("那9个直属事业单位是哪9个", passage, ("直属", "事业单位")) is unmet
