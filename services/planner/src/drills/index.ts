export { loadDrillSchedules, parseDrillSchedules, parseDurationSeconds, cronProblem, MAX_DRILL_SECONDS, type DrillSchedule, type LoadScheduleOptions } from './drill-schedule.ts';
export { decideSlot, latestSlot, nextSlot, openWorkOf, scheduledDrillId, scheduleRequester, type OpenIncidentView, type OpenWork, type SlotContext, type SlotDecision } from './drill-slots.ts';
export { DrillScheduler, type DrillSchedulerOptions } from './drill-scheduler.ts';
export { DrillReportWriter, drillIdOf, drillReportOf, isFinalDrillProgress, storedFinalProgress, type DrillReportWriterOptions } from './drill-report-writer.ts';
export { firstQuietMinute, isTimeZone, localTime, parseQuietWindow, quietHoursSyntax, quietWindowAt, type LocalTime, type QuietWindow } from './quiet-hours.ts';
