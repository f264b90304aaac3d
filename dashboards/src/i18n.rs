//! English and Simplified Chinese string tables, and choosing between them.
//!
//! A page's language is the `lang=` URL parameter when it names one we
//! have, else the best match of the browser's `Accept-Language`, else
//! English. Both tables are values of one struct, so a string missing in
//! one language is a compile error, not a blank on a page.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    /// Every language, in the order the switch lists them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag used in `lang=` and `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    /// A `lang=` value: `en…` or `zh…` (any case; `zh-TW` too gets the
    /// Chinese pages, the closest we have); `None` for anything else.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header value: the
    /// supported tag with the highest `q` (the earlier on ties); English
    /// when none is supported or the header is absent or malformed.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::En;
        };
        let mut best: Option<(f64, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f64>().ok())
                .filter(|q| q.is_finite() && *q > 0.0);
            if let (Some(lang), Some(q)) = (Lang::parse(tag), q)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// `lang=` wins over `Accept-Language`.
    pub fn negotiate(lang_param: Option<&str>, accept_language: Option<&str>) -> Lang {
        lang_param
            .and_then(Lang::parse)
            .unwrap_or_else(|| Lang::from_accept_language(accept_language))
    }

    /// This language's string table.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::ZhCn => &ZH_CN,
        }
    }
}

/// Every piece of text the pages show, in one language.
#[derive(Debug)]
pub struct Strings {
    pub tenant: &'static str,
    pub nav_label: &'static str,
    pub overview: &'static str,
    pub channels: &'static str,
    pub teams_agents: &'static str,
    pub tags: &'static str,
    pub traffic: &'static str,
    pub scripts: &'static str,
    pub experiments: &'static str,
    pub staffing: &'static str,
    pub language: &'static str,
    pub theme: &'static str,
    pub theme_auto: &'static str,
    pub theme_light: &'static str,
    pub theme_dark: &'static str,
    pub controls: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub bucket: &'static str,
    pub hour: &'static str,
    pub day: &'static str,
    pub week: &'static str,
    pub month: &'static str,
    pub minutes_15: &'static str,
    pub minutes_30: &'static str,
    pub time_zone: &'static str,
    /// Why the time zone cannot be changed on a page (its tooltip).
    pub time_zone_of_tenant: &'static str,
    pub quick_ranges: &'static str,
    /// Labels of the date presets, in `Preset` order.
    pub presets: [&'static str; 7],
    pub filters: &'static str,
    pub apply: &'static str,
    pub download_csv: &'static str,
    /// The small link next to a chart to its own CSV.
    pub chart_csv: &'static str,
    /// The tooltip of that link.
    pub chart_csv_title: &'static str,
    /// Labels of the filter dimensions, in `Dimension::ALL` order.
    pub dimensions: [&'static str; 10],
    pub window: &'static str,
    pub previous_period: &'static str,
    pub vs_previous: &'static str,
    pub no_data: &'static str,
    pub numbers: &'static str,
    pub value: &'static str,
    pub date: &'static str,
    pub target: &'static str,
    pub excellent: &'static str,
    pub good: &'static str,
    pub needs_work: &'static str,
    pub better: &'static str,
    pub worse: &'static str,
    pub notes: &'static str,
    /// Why some KPIs are missing under a filter (as `GET /v1/kpis`'s `notes`).
    pub note_time_based: &'static str,
    /// Money tiles show one currency of several.
    pub note_one_currency: &'static str,
    pub conversations: &'static str,
    pub frt: &'static str,
    pub response: &'static str,
    pub handling: &'static str,
    pub csat: &'static str,
    pub resolution_rate: &'static str,
    pub transfer_rate: &'static str,
    pub channel: &'static str,
    pub team: &'static str,
    pub agent: &'static str,
    pub teams: &'static str,
    pub agents: &'static str,
    pub tag: &'static str,
    pub co_occurrence: &'static str,
    pub together: &'static str,
    pub conversations_by_channel: &'static str,
    pub conversations_by_team: &'static str,
    pub conversations_by_tag: &'static str,
    pub weekday: &'static str,
    /// Monday first.
    pub weekdays: [&'static str; 7],
    pub hour_of_day: &'static str,
    pub traffic_heatmap: &'static str,
    pub total: &'static str,
    pub script: &'static str,
    pub kind: &'static str,
    pub template: &'static str,
    pub quick_reply: &'static str,
    pub uses: &'static str,
    pub csat_by_script: &'static str,
    pub quick_replies: &'static str,
    pub templates: &'static str,
    pub best: &'static str,
    pub worst: &'static str,
    /// Marks a script with too few CSAT scores.
    pub small_sample: &'static str,
    /// How to read the script intervals.
    pub scripts_note: &'static str,
    pub conversations_over_time: &'static str,
    pub experiment: &'static str,
    pub state: &'static str,
    pub primary_metric: &'static str,
    pub units: &'static str,
    pub decision: &'static str,
    pub no_experiments: &'static str,
    pub ship: &'static str,
    pub keep_running: &'static str,
    pub stop: &'static str,
    pub srm_check: &'static str,
    pub srm_ok: &'static str,
    pub srm_mismatch: &'static str,
    pub srm_unavailable: &'static str,
    pub chi_square: &'static str,
    pub p_value: &'static str,
    pub metric: &'static str,
    pub role: &'static str,
    pub variant: &'static str,
    pub control: &'static str,
    pub weight: &'static str,
    pub expected_share: &'static str,
    pub observed_share: &'static str,
    pub lift: &'static str,
    pub relative_lift: &'static str,
    pub confidence_interval: &'static str,
    pub significant: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub chance_to_win: &'static str,
    pub lift_by_metric: &'static str,
    pub forest_note: &'static str,
    pub all_experiments: &'static str,
    pub queue: &'static str,
    pub interval: &'static str,
    pub method: &'static str,
    pub actual: &'static str,
    pub forecast_mean: &'static str,
    pub band_p10_p90: &'static str,
    pub required_agents: &'static str,
    /// Parts of the day (0–6, 6–12, 12–18, 18–24 h).
    pub day_parts: [&'static str; 4],
    pub agents_by_day_part: &'static str,
    pub most_agents: &'static str,
    pub at: &'static str,
    pub forecast_vs_actual: &'static str,
    pub service_level_target: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub api_key: &'static str,
    pub sign_in_hint: &'static str,
    pub error: &'static str,
    pub back_to_overview: &'static str,
    /// Labels of the glossary KPIs, in `KPI_KEYS` order.
    pub kpi_labels: [&'static str; 18],
}

impl Strings {
    /// The label of a glossary KPI key, `None` for other keys.
    pub fn kpi_label(&self, key: &str) -> Option<&'static str> {
        crate::kpi::KPI_KEYS
            .iter()
            .position(|k| *k == key)
            .map(|i| self.kpi_labels[i])
    }
}

static EN: Strings = Strings {
    tenant: "Tenant",
    nav_label: "Pages",
    overview: "Overview",
    channels: "Channels",
    teams_agents: "Teams & agents",
    tags: "Tags",
    traffic: "Traffic",
    scripts: "Scripts",
    experiments: "Experiments",
    staffing: "Staffing",
    language: "Language",
    theme: "Theme",
    theme_auto: "Auto",
    theme_light: "Light",
    theme_dark: "Dark",
    controls: "View",
    from: "From",
    to: "To (exclusive)",
    bucket: "Time bucket",
    hour: "Hour",
    day: "Day",
    week: "Week",
    month: "Month",
    minutes_15: "15 min",
    minutes_30: "30 min",
    quick_ranges: "Quick ranges",
    presets: [
        "Last 7 days",
        "Last week",
        "This month",
        "Last month",
        "Today",
        "Tomorrow",
        "Next 7 days",
    ],
    time_zone_of_tenant: "The tenant's reporting time zone (an admin sets it with PUT /v1/settings)",
    time_zone: "Time zone",
    filters: "Filters",
    apply: "Apply",
    download_csv: "Download CSV",
    chart_csv: "CSV",
    chart_csv_title: "Download this chart's numbers as CSV",
    dimensions: [
        "Channel",
        "Channel account",
        "Queue",
        "Team",
        "Agent",
        "Language",
        "Region",
        "Customer tier",
        "Tag",
        "Experiment variant",
    ],
    window: "Period",
    previous_period: "Previous period",
    vs_previous: "vs previous",
    no_data: "No data for this selection.",
    numbers: "Numbers",
    value: "Value",
    date: "Date",
    target: "Target",
    excellent: "Excellent",
    good: "Good",
    needs_work: "Needs work",
    better: "better",
    worse: "worse",
    notes: "Notes",
    note_time_based: "Repurchase rate, labor cost, cost per conversation and conversations per online agent-hour are left out under a filter: orders placed, agent time online and costs incurred do not belong to a channel, team or tag.",
    note_one_currency: "Money KPIs are shown in one currency; the CSV download has every currency.",
    conversations: "Conversations",
    frt: "First response (mean)",
    response: "Avg response",
    handling: "Handling (mean)",
    csat: "CSAT",
    resolution_rate: "Resolution rate",
    transfer_rate: "AI→human transfer",
    channel: "Channel",
    team: "Team",
    agent: "Agent",
    teams: "Teams",
    agents: "Agents",
    tag: "Tag",
    co_occurrence: "Tags that occur together",
    together: "Conversations with both",
    conversations_by_channel: "Conversations by channel",
    conversations_by_team: "Conversations by team",
    conversations_by_tag: "Conversations by tag",
    weekday: "Weekday",
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    hour_of_day: "Hour of day",
    traffic_heatmap: "Conversations by weekday and hour",
    total: "Total",
    script: "Script",
    kind: "Kind",
    template: "Template",
    quick_reply: "Quick reply",
    uses: "Uses",
    csat_by_script: "CSAT by script",
    quick_replies: "Quick replies",
    templates: "Templates",
    best: "Best",
    worst: "Worst",
    small_sample: "few scores",
    scripts_note: "Best first by mean CSAT. Each bar is a 95 % confidence interval (CSAT: the mean's t interval on the 1–5 scale; resolution: Wilson interval): where two bars overlap, the difference is not established. Scripts with few scores are greyed. A conversation that used several scripts counts for each, so this is an association: to prove that a script causes the difference, run it as an experiment.",
    conversations_over_time: "Conversations over time",
    experiment: "Experiment",
    state: "State",
    primary_metric: "Primary metric",
    units: "Units",
    decision: "Decision",
    no_experiments: "No experiments yet.",
    ship: "Ship",
    keep_running: "Keep running",
    stop: "Stop",
    srm_check: "Sample ratio check",
    srm_ok: "Split matches the weights",
    srm_mismatch: "Sample ratio mismatch: the split does not match the weights; do not trust the lifts until it is explained",
    srm_unavailable: "Not enough units for the check yet",
    chi_square: "Chi-square",
    p_value: "p-value",
    metric: "Metric",
    role: "Role",
    variant: "Variant",
    control: "Control",
    weight: "Weight",
    expected_share: "Expected share",
    observed_share: "Observed share",
    lift: "Lift",
    relative_lift: "Relative lift",
    confidence_interval: "Confidence interval",
    significant: "Significant",
    yes: "yes",
    no: "no",
    chance_to_win: "Chance to beat control",
    lift_by_metric: "Relative lift vs control, with confidence intervals",
    forest_note: "Each line is a confidence interval; a line that does not cross 0 is a significant difference.",
    all_experiments: "All experiments",
    queue: "Queue",
    interval: "Interval",
    method: "Method",
    actual: "Actual",
    forecast_mean: "Forecast (mean)",
    band_p10_p90: "P10–P90 band",
    required_agents: "Required agents",
    day_parts: [
        "Night (0–6 h)",
        "Morning (6–12 h)",
        "Afternoon (12–18 h)",
        "Evening (18–24 h)",
    ],
    agents_by_day_part: "Agents needed by part of the day",
    most_agents: "Most agents",
    at: "at",
    forecast_vs_actual: "Forecast vs actual arrivals",
    service_level_target: "Service level target",
    sign_in: "Sign in",
    sign_out: "Sign out",
    api_key: "API key",
    sign_in_hint: "Paste a cxlake key (cxk_…). Pages show only the tenant of the key.",
    error: "Error",
    back_to_overview: "Back to the overview",
    kpi_labels: [
        "Conversations",
        "First response time",
        "Human first response",
        "Average response time",
        "Handling duration",
        "SLA attainment",
        "CSAT",
        "Resolution rate",
        "Reopen rate",
        "AI→human transfer rate",
        "AI automation rate",
        "Consult conversion rate",
        "Average order value",
        "Repurchase rate",
        "Conversations per agent",
        "AI copilot adoption",
        "Labor cost",
        "Cost per conversation",
    ],
};

static ZH_CN: Strings = Strings {
    tenant: "租户",
    nav_label: "页面",
    overview: "总览",
    channels: "渠道",
    teams_agents: "团队与客服",
    tags: "标签",
    traffic: "流量",
    scripts: "话术",
    experiments: "实验",
    staffing: "排班",
    language: "语言",
    theme: "主题",
    theme_auto: "自动",
    theme_light: "浅色",
    theme_dark: "深色",
    controls: "视图",
    from: "开始日期",
    to: "结束日期（不含）",
    bucket: "时间粒度",
    hour: "小时",
    day: "天",
    week: "周",
    month: "月",
    minutes_15: "15 分钟",
    minutes_30: "30 分钟",
    quick_ranges: "快捷日期",
    presets: ["最近 7 天", "上周", "本月", "上月", "今天", "明天", "未来 7 天"],
    time_zone_of_tenant: "租户的报表时区（管理员通过 PUT /v1/settings 设置）",
    time_zone: "时区",
    filters: "筛选",
    apply: "应用",
    download_csv: "下载 CSV",
    chart_csv: "CSV",
    chart_csv_title: "下载此图表的数据（CSV）",
    dimensions: [
        "渠道",
        "渠道账号",
        "队列",
        "团队",
        "客服",
        "语言",
        "地区",
        "客户等级",
        "标签",
        "实验分组",
    ],
    window: "统计周期",
    previous_period: "上一周期",
    vs_previous: "对比上一周期",
    no_data: "当前筛选条件下没有数据。",
    numbers: "数据",
    value: "数值",
    date: "日期",
    target: "目标",
    excellent: "优秀",
    good: "良好",
    needs_work: "待改进",
    better: "变好",
    worse: "变差",
    notes: "说明",
    note_time_based: "使用筛选时不显示复购率、人力成本、单会话成本和每在线小时会话数：订单、客服在线时长和费用无法归属到渠道、团队或标签。",
    note_one_currency: "金额类指标只显示一种货币；CSV 下载包含所有货币。",
    conversations: "会话数",
    frt: "首次响应（平均）",
    response: "平均响应",
    handling: "处理时长（平均）",
    csat: "满意度",
    resolution_rate: "解决率",
    transfer_rate: "AI 转人工率",
    channel: "渠道",
    team: "团队",
    agent: "客服",
    teams: "团队",
    agents: "客服",
    tag: "标签",
    co_occurrence: "同时出现的标签",
    together: "同时带有两个标签的会话",
    conversations_by_channel: "各渠道会话数",
    conversations_by_team: "各团队会话数",
    conversations_by_tag: "各标签会话数",
    weekday: "星期",
    weekdays: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
    hour_of_day: "小时",
    traffic_heatmap: "按星期和小时的会话数",
    total: "合计",
    script: "话术",
    kind: "类型",
    template: "模板",
    quick_reply: "快捷回复",
    uses: "使用次数",
    csat_by_script: "各话术的满意度",
    quick_replies: "快捷回复",
    templates: "消息模板",
    best: "最佳",
    worst: "最差",
    small_sample: "评分较少",
    scripts_note: "按平均满意度从高到低排列。每条横条是 95% 置信区间（满意度：1–5 分均值的 t 区间；解决率：Wilson 区间）：两条横条重叠时，差异并不成立。评分较少的话术以灰色显示。一个会话用了多个话术时每个都计入，因此这只是相关性：要证明某个话术带来差异，请把它作为实验运行。",
    conversations_over_time: "会话数趋势",
    experiment: "实验",
    state: "状态",
    primary_metric: "主要指标",
    units: "样本数",
    decision: "结论",
    no_experiments: "还没有实验。",
    ship: "上线",
    keep_running: "继续运行",
    stop: "停止",
    srm_check: "样本比例检验",
    srm_ok: "分流比例与权重一致",
    srm_mismatch: "样本比例不匹配：分流与权重不一致，查明原因之前不要相信提升结果",
    srm_unavailable: "样本不足，暂无法检验",
    chi_square: "卡方值",
    p_value: "p 值",
    metric: "指标",
    role: "角色",
    variant: "分组",
    control: "对照组",
    weight: "权重",
    expected_share: "预期占比",
    observed_share: "实际占比",
    lift: "提升",
    relative_lift: "相对提升",
    confidence_interval: "置信区间",
    significant: "显著",
    yes: "是",
    no: "否",
    chance_to_win: "优于对照组的概率",
    lift_by_metric: "相对对照组的提升及置信区间",
    forest_note: "每条线是一个置信区间；不跨过 0 的线表示显著差异。",
    all_experiments: "全部实验",
    queue: "队列",
    interval: "时段",
    method: "方法",
    actual: "实际",
    forecast_mean: "预测（均值）",
    band_p10_p90: "P10–P90 区间",
    required_agents: "所需客服人数",
    day_parts: [
        "凌晨（0–6 时）",
        "上午（6–12 时）",
        "下午（12–18 时）",
        "晚上（18–24 时）",
    ],
    agents_by_day_part: "各时段所需客服人数",
    most_agents: "最多客服人数",
    at: "时间",
    forecast_vs_actual: "预测与实际进线量",
    service_level_target: "服务水平目标",
    sign_in: "登录",
    sign_out: "退出登录",
    api_key: "API 密钥",
    sign_in_hint: "粘贴 cxlake 密钥（cxk_…）。页面只显示该密钥所属租户的数据。",
    error: "错误",
    back_to_overview: "返回总览",
    kpi_labels: [
        "会话数",
        "首次响应时间",
        "人工首次响应",
        "平均响应时间",
        "处理时长",
        "SLA 达成率",
        "满意度（CSAT）",
        "解决率",
        "重开率",
        "AI 转人工率",
        "AI 自动化率",
        "咨询转化率",
        "平均订单金额",
        "复购率",
        "人均会话数",
        "AI 辅助采纳率",
        "人力成本",
        "单会话成本",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_highest_supported_q() {
        assert_eq!(Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::ZhCn);
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9,zh-CN;q=0.8")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("fr-FR, zh;q=0.5, en;q=0.4")),
            Lang::ZhCn
        );
        assert_eq!(Lang::from_accept_language(Some("de, fr")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("zh;q=0, en;q=0.1")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some(";;;q=x,,")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }

    #[test]
    fn lang_param_overrides_the_header() {
        assert_eq!(Lang::negotiate(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN"), Some("en")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("klingon"), Some("zh-CN")), Lang::ZhCn);
    }

    #[test]
    fn every_kpi_key_has_a_label_in_both_languages() {
        for key in crate::kpi::KPI_KEYS {
            for lang in Lang::ALL {
                assert!(lang.strings().kpi_label(key).is_some_and(|l| !l.is_empty()), "{key}");
            }
        }
        assert_eq!(Lang::ZhCn.strings().kpi_label("frt_s"), Some("首次响应时间"));
        assert_eq!(Lang::En.strings().kpi_label("nope"), None);
    }
}
