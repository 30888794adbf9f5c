-- title: Next-7-days demand forecast per region (seasonal baseline)
-- description: Forecasts each region's hourly demand for the 168 hours from `as_of` as
--   the mean of the same hour of the week over the `weeks` weeks before it (a seasonal
--   naive baseline). Every row also carries the method's error on the last known week,
--   forecast the same way from the `weeks` weeks before that one: mean absolute error and
--   mean absolute percentage error over its hours. Natural units: {{natural_units}}.
-- param metric: Enum({{metric_names}}) = cpu | which metric
-- param as_of: DateTime = now | first forecast hour; history is what comes before it (UTC)
-- param weeks: UInt32[1..8] = 2 | weeks of history averaged per hour of the week
-- param region: String? | only this region
-- needs: weeks+1 weeks before as_of
-- metrics: metric
WITH
hourly AS (
    -- One metric (the WHERE): grouping by it too only carries it along for its unit.
    SELECT region, hour, metric,
           toDayOfWeek(hour) * 24 + toHour(hour) AS slot,
           toFloat64(sum(total)) / {{natural_per_hour(metric)}} AS value
    FROM analytics.fleet_usage_hourly
    WHERE metric = {metric:String}
      AND hour >= {as_of:DateTime('UTC')} - toIntervalDay(7 * ({weeks:UInt32} + 1))
      AND hour < {as_of:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY region, hour, metric
),
baseline AS (
    SELECT region, metric, slot, avg(value) AS forecast, count() AS weeks_averaged
    FROM hourly
    WHERE hour >= {as_of:DateTime('UTC')} - toIntervalDay(7 * {weeks:UInt32})
    GROUP BY region, metric, slot
),
backtest_baseline AS (
    SELECT region, slot, avg(value) AS forecast
    FROM hourly
    WHERE hour < {as_of:DateTime('UTC')} - toIntervalDay(7)
    GROUP BY region, slot
),
backtest AS (
    SELECT a.region AS region,
           count() AS hours,
           avg(abs(a.value - b.forecast)) AS mae,
           100 * avgIf(abs(a.value - b.forecast) / a.value, a.value > 0) AS mape
    FROM hourly AS a
    INNER JOIN backtest_baseline AS b ON a.region = b.region AND a.slot = b.slot
    WHERE a.hour >= {as_of:DateTime('UTC')} - toIntervalDay(7)
    GROUP BY a.region
),
future AS (
    SELECT {as_of:DateTime('UTC')} + toIntervalHour(number) AS hour,
           toDayOfWeek(hour) * 24 + toHour(hour) AS slot
    FROM numbers(168)
)
SELECT b.region AS region,
       f.hour AS hour,
       round(b.forecast, 4) AS forecast,
       {{natural_unit(b.metric)}} AS unit,
       b.weeks_averaged AS weeks_averaged,
       if(t.hours = 0, NULL, round(t.mae, 4)) AS backtest_mae,
       if(t.hours = 0, NULL, round(t.mape, 2)) AS backtest_mape_pct,
       t.hours AS backtest_hours
FROM future AS f
INNER JOIN baseline AS b ON f.slot = b.slot
LEFT JOIN backtest AS t ON b.region = t.region
ORDER BY region, hour
